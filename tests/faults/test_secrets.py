"""Secrets stay out of the session log: scrubbed command environment, FazAI's secret files refused
by the policy, and known secret values redacted from every stored event (canaries grepped in the
database, the daemon log, replay and --json; a real fazaid and the real CLI)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_harness import REPO, Daemon, action, sse_messages
from fazai.config import load_settings
from fazai.safety.secrets import GuardedPolicy, secret_files
from fazai.sessions.secrets import known_secrets
from fazai.store.redact import Redactor
from fazai.targets.local import LocalTarget, shell_env

CANARY_TOKEN = "canary-daemon-token-5f1c0e77a2"
CANARY_KEY = "canary-opn-key-9b3d21"
CANARY_SECRET = "canary-opn-secret-77ee01"
CANARY_API = "sk-canary-openai-4a4a4a4a"
CANARY_ENV = "canary-env-passwd-31337"
CANARIES = [CANARY_TOKEN, CANARY_KEY, CANARY_SECRET, CANARY_API, CANARY_ENV]


def _settings(tmp_path: Path, extra: str = ""):
    cfg = tmp_path / "fazai.toml"
    cfg.write_text(
        f'[paths]\nstate_dir = "{tmp_path / "state"}"\nruntime_dir = "{tmp_path / "run"}"\n{extra}'
    )
    return load_settings(cfg, environ={})


def test_policy_refuses_reads_of_fazai_secret_files(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    st = s.paths.state_dir
    p = GuardedPolicy(s.safety, protected=secret_files(s))
    refused = [
        f"cat {st}/daemon.token",
        f"cat {st / 'opnsense' / 'secrets.json'}",
        f"sqlite3 {st}/fazai.db .dump",
        f"head -c 100 {st}/fazai.db-wal",
        f"cd {st} && cat daemon.token",
        f"cat {st}/*",
        f"grep -r key {st}",
        f"tar cf - {st} | base64",
        "cat /proc/1/environ",
        "tr '\\0' '\\n' < /proc/$PPID/environ",
    ]
    for cmd in refused:
        d = p.check_command(cmd)
        assert d.verdict == "deny" and d.risk == "forbidden", (cmd, d)
    for cmd in ("cat /etc/hostname", "ls /tmp", "df -h", f"ls {st.parent}"):
        assert p.check_command(cmd).verdict == "allow", cmd


async def test_commands_get_a_scrubbed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_API)
    monkeypatch.setenv("SOME_RANDOM_SETTING", "x")
    monkeypatch.setenv("LC_TIME", "C.UTF-8")
    env = shell_env()
    assert "OPENAI_API_KEY" not in env and "SOME_RANDOM_SETTING" not in env
    assert env["LC_TIME"] == "C.UTF-8" and "PATH" in env
    res = await LocalTarget().run("env; cat /proc/self/environ | tr '\\0' '\\n'", timeout=10)
    assert res.exit_code == 0 and CANARY_API not in res.stdout and "HOME=" in res.stdout
    names = {ln.split("=", 1)[0] for ln in res.stdout.splitlines() if "=" in ln}
    allowed = {"PATH", "LANG", "TERM", "HOME", "USER", "LOGNAME", "TZ", "SHELL", "PWD", "SHLVL", "_"}
    allowed |= {"FAZAI_CMD_OWNER", "PAGER", "GIT_PAGER", "SYSTEMD_PAGER", "SYSTEMD_COLORS", "DEBIAN_FRONTEND"}
    assert {n for n in names if not n.startswith("LC_")} <= allowed, names


def test_known_secrets_and_redactor(tmp_path: Path) -> None:
    s = _settings(tmp_path, '[daemon]\ndatabase_url = "postgresql://fazai:canary-db-pw-8812@db/fazai"\n')
    s.paths.state_dir.mkdir(parents=True)
    s.daemon_token_file.write_text(CANARY_TOKEN + "\n")
    (s.paths.state_dir / "opnsense").mkdir()
    (s.paths.state_dir / "opnsense" / "secrets.json").write_text(
        json.dumps({"fw1": {"key": CANARY_KEY, "secret": CANARY_SECRET}})
    )
    found = known_secrets(s, {"OPENAI_API_KEY": CANARY_API, "MY_DB_PASSWORD": CANARY_ENV, "HOME": "/root"})
    for v in [*CANARIES, "canary-db-pw-8812"]:
        assert v in found, v
    assert "/root" not in found
    r = Redactor(found)
    out = r.value({"text": f"a {CANARY_TOKEN} b", "list": [CANARY_KEY, 3], "n": 1})
    assert out == {
        "text": "a [redacted: daemon token] b",
        "list": ["[redacted: OPNsense fw1 API key]", 3],
        "n": 1,
    }


def _fazai(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fazai.cli.main", *args],
        env={**os.environ, "FAZAI_CONFIG": str(cfg), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=90,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )


def test_canary_secrets_never_reach_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "canary"
    state = home / "state"
    (state / "opnsense").mkdir(parents=True)
    (state / "daemon.token").write_text(CANARY_TOKEN + "\n")
    os.chmod(state / "daemon.token", 0o600)
    (state / "opnsense" / "secrets.json").write_text(
        json.dumps({"fw1": {"key": CANARY_KEY, "secret": CANARY_SECRET}})
    )
    # Somewhere the agent may read (not FazAI's): a file an attacker planted with the values in it.
    leak = tmp_path / "leak.txt"
    leak.write_text(" ".join(CANARIES) + "\n")
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_API)
    monkeypatch.setenv("BACKUP_PASSWORD", CANARY_ENV)
    goal_marker = "goal-marker-text-0451"
    script = [
        action(action="shell", command="env; printenv"),
        action(action="shell", command=f"cat {state}/daemon.token"),
        action(action="shell", command=f"cat {state / 'opnsense' / 'secrets.json'}"),
        action(action="shell", command=f"cat {leak}"),
        action(action="done", answer=f"the token is {CANARY_TOKEN}", status="success"),
    ]
    d = Daemon(home, script, f'log_file = "{home / "fazaid.log"}"').start(timeout=180)
    try:
        cfg = home / "cli.toml"
        cfg.write_text(d.config.read_text().replace("port = 3120", f"port = {d.port}"))
        run = _fazai(cfg, "agent", "--daemon", "--json", "--yes", f"look around {goal_marker}")
        assert run.returncode == 0, run.stderr
        lines = [json.loads(x) for x in run.stdout.splitlines()]
        sid = lines[0]["session"]
        denied = [e for e in lines[:-1] if e.get("kind") == "exec_end" or e.get("kind") == "observe"]
        assert denied  # the run went through its actions
        texts = [e["data"].get("text", "") for e in lines[:-1] if e.get("kind") == "exec_log"]
        assert any("[redacted: daemon token]" in t for t in texts), texts
        replay = _fazai(cfg, "replay", sid)
        replay_json = _fazai(cfg, "replay", "--json", sid)
        with d.client() as c:
            stored = [m for n, m, _ in sse_messages(c.get(f"/agent/sessions/{sid}/events")) if n == "message"]
            listed = c.get("/agent/sessions").text
    finally:
        d.stop()
    db_bytes = b"".join(p.read_bytes() for p in state.glob("fazai.db*"))
    daemon_log = "".join(d.lines) + (home / "fazaid.log").read_text()
    outputs = {
        "--json": run.stdout,
        "stderr": run.stderr,
        "replay": replay.stdout,
        "replay --json": replay_json.stdout,
        "sse": json.dumps(stored),
        "list": listed,
        "daemon log": daemon_log,
    }
    for canary in CANARIES:
        assert canary.encode() not in db_bytes, canary
        for where, text in outputs.items():
            assert canary not in text, (canary, where)
    assert goal_marker not in daemon_log
    # The policy refused the two reads of FazAI's own files (they never ran).
    kinds = [(e["kind"], e["data"]) for e in stored]
    refusals = [dd for k, dd in kinds if k == "observe" and "FazAI's own secret" in json.dumps(dd)]
    assert len(refusals) >= 2, kinds


def test_config_masks_the_database_password(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[daemon]\ndatabase_url = "postgresql://fazai:canary-db-pw-8812@db.example/fazai"\n')
    p = _fazai(cfg, "config")
    assert p.returncode == 0, p.stderr
    assert "canary-db-pw-8812" not in p.stdout and "fazai:***@db.example" in p.stdout
    assert asyncio  # keep the import for the async test above


def test_a_secret_split_across_token_events_is_redacted() -> None:
    from fazai.protocol import Event
    from fazai.store.redact import StreamRedactor

    sr = StreamRedactor(Redactor({CANARY_TOKEN: "daemon token"}))
    pieces = ["the token is ", CANARY_TOKEN[:5], CANARY_TOKEN[5:17], CANARY_TOKEN[17:], " ok", "cat"]
    out: list[Event] = []
    for p in pieces:
        out += sr.feed(Event(session="s", kind="token", data={"text": p, "iteration": 1}))
    out += sr.feed(Event(session="s", kind="action", data={"action": 1}))
    texts = [e.data.get("text") for e in out]
    joined = "".join(t for t in texts if t)
    assert joined == "the token is [redacted: daemon token] okcat"
    assert out[-1].kind == "action"
    for t in texts:
        assert not t or CANARY_TOKEN[:5] not in t
