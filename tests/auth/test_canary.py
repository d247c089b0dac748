"""Canary secrets planted in the vault never show up: not in any CLI output (plain or --json), error,
log line, session event, process command line, nor anywhere in the database files — while the
provider that references them (``api_key = "vault:…"``) really authenticates with them."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from cli_env import fazai

import fake_apis


@pytest.fixture
def canary_api(monkeypatch: pytest.MonkeyPatch):
    canary = "sk-canary-" + secrets.token_hex(12)
    monkeypatch.setattr(fake_apis, "API_KEY", canary)  # the fake API accepts only the canary
    with fake_apis.serve(fake_apis.anthropic_app(delay_s=0)) as url:
        yield canary, url


@pytest.mark.timeout(900)  # seven CLI processes: slow only on a crowded machine
def test_canaries_stay_secret(tmp_path: Path, canary_api) -> None:
    canary, url = canary_api
    other = "opnsense-canary-" + secrets.token_hex(12)
    state = tmp_path / "state"
    cfg = tmp_path / "fazai.toml"
    cfg.write_text(
        f"""
[paths]
state_dir = "{state}"
runtime_dir = "{tmp_path / "run"}"
[ai_provider]
provider = "anthropic"
model = "claude-test"
base_url = "{url}"
api_key = "vault:anthropic"
[agent]
max_iterations = 2
max_format_errors = 0
facts_budget_s = 0
grounding = false
learn = false
[kb]
enabled = false
"""
    )
    outputs: list[str] = []

    def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> int:
        rc, out, err = fazai(cfg, *args, stdin=stdin, env=env)
        outputs.extend([" ".join(args), out, err])
        return rc

    assert run("secrets", "set", "anthropic", "--stdin", stdin=canary + "\n") == 0
    assert run("secrets", "set", "opnsense-secret", stdin=other) == 0  # stdin not a TTY: read from it
    assert run("secrets", "list", "--json") == 0
    assert run("config") == 0
    # The agent's provider reads the key from the vault: the fake API answers only to the canary.
    assert run("agent", "--json", "--yes", "say something") in (0, 1, 3, 4)
    assert "You said" in _events(state)
    assert run("secrets", "list", env={"FAZAI_VAULT_KEY": "x" * 43}) == 1
    assert run("audit", "export") == 0
    blob = "\n".join(outputs)
    assert "does not open this vault" in blob  # the wrong-key error was shown…
    for c in (canary, other):
        assert c not in blob  # …but no secret in any output, argv or error
        for f in state.rglob("*"):
            if f.is_file():
                assert c.encode() not in f.read_bytes(), f"{c} found in {f}"
    assert json.loads(outputs[outputs.index("secrets list --json") + 1])[0]["name"] == "anthropic"


def _events(state: Path) -> str:
    import sqlite3

    with sqlite3.connect(state / "fazai.db") as db:
        return "\n".join(str(r[0]) for r in db.execute("SELECT data FROM events"))
