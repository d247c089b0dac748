"""``fazai kb`` and ``fazai facts`` through the real Typer app, on a temporary state dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fazai.cli.main import _register, app


@pytest.fixture
def cli(tmp_path: Path, minilm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    cfg = tmp_path / "fazai.toml"
    cfg.write_text("")
    monkeypatch.setenv("FAZAI_CONFIG", str(cfg))
    monkeypatch.setenv("FAZAI_PATHS__STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FAZAI_KB__EMBEDDING_MODEL_DIR", str(minilm_dir))
    if not any(g.name == "kb" for g in app.registered_groups):
        _register()
    return CliRunner()


def test_kb_commands_end_to_end(cli: CliRunner, tmp_path: Path) -> None:
    r = cli.invoke(app, ["kb", "search", "which services failed to start", "-k", "2", "--json"])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)
    assert hits[0]["id"] in {"starter.failed-units", "starter.answer-failed-units"}
    assert hits[0]["status"] == "verified"

    snippet = "haproxy -c -f /etc/haproxy/haproxy.cfg && systemctl reload haproxy"
    args = ["--snippet", snippet, "-t", "haproxy", "--service", "haproxy", "--id", "ops.haproxy", "--json"]
    r = cli.invoke(app, ["kb", "add", "--title", "Reload HAProxy safely", *args])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["status"] == "unverified"
    assert cli.invoke(app, ["kb", "verify", "ops.haproxy", "--evidence", "haproxy -c ok"]).exit_code == 0
    r = cli.invoke(app, ["kb", "show", "ops.haproxy", "--json"])
    shown = json.loads(r.stdout)
    assert shown["status"] == "verified" and shown["evidence"] == "haproxy -c ok"

    r = cli.invoke(app, ["kb", "list", "--service", "haproxy", "--json"])
    assert [i["id"] for i in json.loads(r.stdout)] == ["ops.haproxy"]

    dump = tmp_path / "kb.jsonl"
    assert cli.invoke(app, ["kb", "export", str(dump), "--tag", "haproxy"]).exit_code == 0
    assert len(dump.read_text().splitlines()) == 1
    assert cli.invoke(app, ["kb", "rm", "ops.haproxy", "--yes"]).exit_code == 0
    assert cli.invoke(app, ["kb", "show", "ops.haproxy"]).exit_code == 1
    r = cli.invoke(app, ["kb", "import", str(dump)])
    assert r.exit_code == 0 and "imported 1" in r.stdout
    assert cli.invoke(app, ["kb", "show", "ops.haproxy"]).exit_code == 0


def test_kb_bad_input_is_a_clear_error(cli: CliRunner, tmp_path: Path) -> None:
    r = cli.invoke(app, ["kb", "add", "--title", "x"])
    assert r.exit_code == 2 and "--snippet" in r.output
    r = cli.invoke(app, ["kb", "add", "--title", "ab", "--snippet", "ls"])
    assert r.exit_code == 2 and "title" in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "no snippet here"}\n')
    r = cli.invoke(app, ["kb", "import", str(bad)])
    assert r.exit_code == 1 and "bad.jsonl:1" in r.output and "snippet" in r.output
    r = cli.invoke(app, ["kb", "import", str(tmp_path / "missing.jsonl")])
    assert r.exit_code == 2 and "cannot read" in r.output


def test_facts_json(cli: CliRunner) -> None:
    r = cli.invoke(app, ["facts", "--json", "--budget", "5"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["os"]["id"] and data["kernel"]["release"]
