"""``fazai nodes …``, ``fazai ssh trust|check`` and ``fazai ask --node/--nodes`` as an operator runs
them: real CLI processes, the store in a temporary state dir, the real sshd, the scripted model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fazai.cli.main import _register, app
from fazai.targets.known_hosts import known_keys
from targets.sshd import SSHServer, free_port


def _config(home: Path, sshd: SSHServer, script: list[str]) -> Path:
    (home / "script.json").write_text(json.dumps(script))
    cfg = home / "fazai.toml"
    cfg.write_text(f"""
[paths]
state_dir = "{home / "state"}"
runtime_dir = "{home / "run"}"
[ai_provider]
provider = "scripted"
script = "{home / "script.json"}"
[daemon]
port = {free_port()}
[kb]
enabled = false
[agent]
facts_budget_s = 0
[ssh]
known_hosts = "{home / "known_hosts"}"
key = "{sshd.user_key}"
connect_timeout_s = 10
""")
    return cfg


runner = CliRunner()


class _Res:
    def __init__(self, code: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


def _fazai(cfg: Path, *args: str, ok: bool = True, input: str | None = None) -> _Res:
    """The CLI in this process (Typer's runner): the same code as the console script, without paying
    a Python start and every import per command on a busy machine."""
    if not any(g.name == "nodes" for g in app.registered_groups):  # once per process
        _register()
    res = runner.invoke(app, list(args), env={"FAZAI_CONFIG": str(cfg), "COLUMNS": "200"}, input=input)
    out = _Res(res.exit_code, res.stdout, res.stderr)
    if ok:
        assert res.exit_code == 0, f"fazai {' '.join(args)} → {res.exit_code}\n{res.stdout}\n{res.stderr}"
    return out


def _json(p: _Res) -> Any:
    try:
        return json.loads(p.stdout)
    except ValueError:
        return json.loads(p.stdout.strip().splitlines()[-1])


def _act(**fields: Any) -> str:
    return "thinking\n" + json.dumps(fields)


def _inventory(tmp_path: Path, sshd: SSHServer) -> tuple[Path, str]:
    """Four nodes added through the CLI (and its checks of bad input); the config and the kernel."""
    kernel = os.uname().release
    script = [
        _act(action="shell", command="uname -r"),
        _act(action="done", answer=f"kernel {kernel}", status="success"),
    ]
    cfg = _config(tmp_path, sshd, script * 3)
    addr = ["--ssh", sshd.host, "--port", str(sshd.port)]
    _fazai(cfg, "nodes", "add", "web-01", *addr, "--site", "sp", "--tag", "web", "--tag", "env=prod")
    _fazai(cfg, "nodes", "add", "web-02", *addr, "--site", "sp", "--group", "front", "-t", "web")
    _fazai(cfg, "nodes", "add", "web-03", "--ssh", "127.0.0.1", "--port", str(free_port()), "--site", "sp",
           "-t", "web")  # fmt: skip
    _fazai(cfg, "nodes", "add", "db-01", "--local", "--site", "rj", "-t", "db")
    bad = _fazai(cfg, "nodes", "add", "web-01", "--local", ok=False)
    assert bad.returncode == 1 and "already exists" in bad.stderr
    rows = _json(_fazai(cfg, "nodes", "list", "--selector", "site=sp,tag=web", "--json"))
    assert [r["name"] for r in rows] == ["web-01", "web-02", "web-03"]
    assert (
        rows[0]["labels"] == {"env": "prod"}
        and rows[1]["group"] == "front"
        and rows[0]["status"] == "unknown"
    )
    table = _fazai(cfg, "nodes", "list").stdout
    assert "web-01" in table and "db-01" in table and "env=prod" in table
    return cfg, kernel


def test_nodes_add_list_tag_untag_show_rm(tmp_path: Path, sshd: SSHServer) -> None:
    cfg, _ = _inventory(tmp_path, sshd)
    _fazai(cfg, "nodes", "tag", "web-02", "canary", "tier=2")
    n = _json(_fazai(cfg, "nodes", "untag", "web-02", "web", "tier", "--json"))
    assert n["tags"] == ["canary"] and n["labels"] == {}
    _fazai(cfg, "nodes", "rm", "web-02")
    gone = _fazai(cfg, "nodes", "show", "web-02", ok=False)
    assert gone.returncode == 1 and "no node 'web-02'" in gone.stderr


@pytest.mark.slow  # ~15 s idle, a minute on a loaded machine: ssh sessions, facts, two fan-outs
def test_ssh_trust_check_and_ask_over_nodes(tmp_path: Path, sshd: SSHServer) -> None:
    cfg, kernel = _inventory(tmp_path, sshd)
    # The host key is not trusted yet: a check is refused with the fingerprint and the command to run.
    refused = _fazai(cfg, "ssh", "check", "web-01", ok=False)
    assert refused.returncode == 1 and sshd.host_fingerprint() in refused.stderr
    assert f"fazai ssh trust 127.0.0.1 --port {sshd.port}" in refused.stderr.replace("\n", "")
    wrong = _fazai(cfg, "ssh", "trust", "127.0.0.1", "--port", str(sshd.port), "--fingerprint", "SHA256:nope",
                   ok=False)  # fmt: skip
    assert wrong.returncode == 1 and "does not match" in wrong.stderr
    no_tty = _fazai(cfg, "ssh", "trust", "127.0.0.1", "--port", str(sshd.port), ok=False, input="y\n")
    assert no_tty.returncode == 1 and "--fingerprint" in no_tty.stderr  # never trusted without a check
    assert not (tmp_path / "known_hosts").exists()
    _fazai(
        cfg, "ssh", "trust", "127.0.0.1", "--port", str(sshd.port), "--fingerprint", sshd.host_fingerprint()
    )
    assert len(known_keys(tmp_path / "known_hosts", "127.0.0.1", "127.0.0.1", sshd.port)) == 1

    check = _json(_fazai(cfg, "ssh", "check", "web-01", "--json"))
    assert check["ok"] and check["uname"].split()[1] == kernel
    shown = _json(_fazai(cfg, "nodes", "show", "web-01", "--json"))
    assert shown["facts"]["kernel"]["release"] == kernel and shown["status"] == "seen"
    down = _fazai(cfg, "ssh", "check", "web-03", "--json", ok=False)
    assert down.returncode == 1 and _json(down)["status"] == "unreachable"

    # One node, streamed like any question; then the selector, one session per node.
    one = _json(_fazai(cfg, "ask", "--node", "web-02", "--json", "which kernel?"))
    assert one["success"] and kernel in one["answer"]
    fan = _fazai(
        cfg, "ask", "--nodes", "site=sp,tag=web", "--concurrency", "1", "--json", "which kernel?", ok=False
    )
    report = _json(fan)
    by = {r["node"]: r for r in report["nodes"]}
    assert by["web-01"]["status"] == by["web-02"]["status"] == "done"
    assert by["web-03"]["status"] == "unreachable" and by["web-03"]["session"] is None
    assert (
        report["summary"]
        == "0 of 3 nodes differ from the most common answer (2 nodes); 1 unreachable (web-03)"
    )
    plain = _json(
        _fazai(cfg, "ask", "--nodes", "site=sp,tag=web", "--command", "--json", "uname -r", ok=False)
    )
    assert [(r["node"], r["status"], r["answer"]) for r in plain["nodes"]][:2] == [
        ("web-01", "done", kernel),
        ("web-02", "done", kernel),
    ]
    assert plain["nodes"][2]["status"] == "unreachable" and plain["mode"] == "command"
    human = _fazai(cfg, "ask", "--nodes", "site=nowhere", "x", ok=False)
    assert human.returncode == 1 and "no node matches" in human.stdout
    sel = _fazai(cfg, "ask", "--nodes", "site", "x", ok=False)
    assert sel.returncode == 2 and "key=value" in sel.stderr


@pytest.mark.parametrize(
    ("args", "says"), [(["--node", "a", "--nodes", "b=c"], "not both"), (["--command"], "goes with --nodes")]
)
def test_bad_option_combinations(tmp_path: Path, sshd: SSHServer, args: list[str], says: str) -> None:
    p = _fazai(_config(tmp_path, sshd, []), "ask", *args, "q", ok=False)
    assert p.returncode == 2 and says in p.stderr
