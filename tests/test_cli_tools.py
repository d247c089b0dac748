"""``fazai tools list|show|promote|rm`` on a temporary state dir."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fazai.cli.main import _register, app
from fazai.models.scripted import ScriptedProvider
from fazai.tools.registry import ToolRegistry
from fazai.tools.smith import ToolSmith
from test_tools import GOOD_MARKER, REQUEST, answer

runner = CliRunner()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAZAI_CONFIG", str(tmp_path / "fazai.toml"))
    (tmp_path / "fazai.toml").write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n')
    if not any(g.name == "tools" for g in app.registered_groups):  # once per process
        _register()
    return tmp_path / "state"


def test_list_show_promote_rm(state: Path):
    reg = ToolRegistry(state / "tools")
    build = asyncio.run(ToolSmith(reg, ScriptedProvider([answer(GOOD_MARKER)])).build(REQUEST, "s_abc"))
    assert build.ok

    res = runner.invoke(app, ["tools", "list", "--json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    assert [(t["name"], t["kind"], t["risk"], t["session"]) for t in listed] == [
        ("write_marker", "generated", "changes_state", "s_abc")
    ]

    res = runner.invoke(app, ["tools", "show", "write_marker", "--json"])
    assert res.exit_code == 0
    shown = json.loads(res.stdout)
    assert shown["validation"]["tests_passed"] == 2 and "def run(args, ctx)" in shown["source"]

    res = runner.invoke(app, ["tools", "promote", "write_marker"])
    assert res.exit_code == 0, res.output
    assert "tests passed (2" in res.stdout and "promoted write_marker" in res.stdout
    assert (state / "tools" / "stable" / "write_marker.py").exists()

    res = runner.invoke(app, ["tools", "promote", "write_marker"])
    assert res.exit_code == 1 and "--force" in res.output

    res = runner.invoke(app, ["tools", "rm", "write_marker", "--yes"])
    assert res.exit_code == 0 and "removed" in res.stdout
    res = runner.invoke(app, ["tools", "rm", "write_marker", "--yes"])
    assert res.exit_code == 1 and "no stable tool named 'write_marker'" in res.output


def test_errors_are_clear(state: Path):
    res = runner.invoke(app, ["tools", "list"])
    assert res.exit_code == 0 and "no tools yet" in res.stdout
    res = runner.invoke(app, ["tools", "show", "nope"])
    assert res.exit_code == 1 and "no tool named 'nope'" in res.output
    res = runner.invoke(app, ["tools", "promote", "nope"])
    assert res.exit_code == 1 and "no validated generated tool named 'nope'" in res.output


def test_research_command_against_fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from research_fakes import free_port, serve

    dead = f"http://127.0.0.1:{free_port()}"
    with serve("searxng") as (web, _):
        cfg = tmp_path / "fazai.toml"
        cfg.write_text(
            f'[paths]\nstate_dir = "{tmp_path / "state"}"\n'
            f'[research]\nsearxng_url = "{web}"\ncontext7_url = "{dead}"\ntimeout_s = 5\n'
        )
        monkeypatch.setenv("FAZAI_CONFIG", str(cfg))
        if not any(c.name == "research" for c in app.registered_commands):
            _register()
        res = runner.invoke(app, ["research", "fail2ban banned", "-s", "web", "--json"])
        assert res.exit_code == 0, res.output
        body = json.loads(res.stdout)
        assert [h["source"] for h in body["hits"]] == ["web", "web"] and body["unavailable"] == []
        monkeypatch.setenv("FAZAI_RESEARCH__SEARXNG_URL", dead)
        res = runner.invoke(app, ["research", "fail2ban banned", "-s", "web"])
        assert res.exit_code == 1 and "web search unavailable: ConnectError" in res.stdout
