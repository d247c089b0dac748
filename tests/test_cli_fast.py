"""The CLI's fast paths (fazai.cli.fast): `--help` matches the real Typer app, `sessions` reads the
same settings as the full loader, talks to a real fazaid (or reads the SQLite store) without Typer,
Rich, httpx or pydantic, and hands anything it cannot do to the full CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_harness import REPO, Daemon, action
from fazai.cli import fast
from fazai.cli.help_table import COMMANDS, SUMMARY
from fazai.config import load_settings

HEAVY = ("typer", "rich", "httpx", "pydantic", "sqlalchemy", "numpy")
PORT = 26311  # this suite's range


def test_help_table_matches_the_typer_app() -> None:
    from fazai.cli.help_gen import current

    summary, rows = current()
    assert (summary, rows) == (SUMMARY, COMMANDS), (
        "the command table is stale: run `.venv/bin/python -m fazai.cli.help_gen`"
    )


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        f"import sys; sys.argv = ['fazai', *{args!r}]\n"
        "from fazai.cli.entry import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
        "sys.exit(code)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180, cwd=REPO
    )


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    p = _cli(["--help"], {**os.environ, "FAZAI_CONFIG": str(tmp_path / "none.toml")})
    assert p.returncode == 0 and "HEAVY []" in p.stderr, p.stderr
    for name, _ in COMMANDS:
        assert f"  {name} " in p.stdout


@pytest.mark.parametrize(
    "toml,env",
    [
        ("", {}),
        ('[paths]\nstate_dir = "/srv/fz"\n[daemon]\nhost = "0.0.0.0"\nport = 4000\n', {}),
        ('[daemon]\nport = 4000\ntoken_file = "/k/t"\n', {"FAZAI_DAEMON__PORT": "4100"}),
        ("", {"FAZAI_DAEMON__DATABASE_URL": "postgresql://u:p@db/fz", "FAZAI_DAEMON__HOST": "::1"}),
        ("", {"FAZAI_PATHS__STATE_DIR": "/var/x", "XDG_DATA_HOME": "/xdg"}),
    ],
)
def test_light_settings_agree_with_the_full_loader(tmp_path: Path, toml: str, env: dict[str, str]) -> None:
    cfg = tmp_path / "fazai.toml"
    cfg.write_text(toml)
    environ = {**os.environ, **env, "FAZAI_CONFIG": str(cfg)}
    light = fast.light_settings(environ)
    old = dict(os.environ)
    os.environ.update(environ)  # default_state_dir reads XDG_* from the process environment
    try:
        full = load_settings(environ=environ)
        want = {
            "url": fast.base_url(full.daemon.host, full.daemon.port),
            "token_file": full.daemon_token_file,
            "database_url": full.database_url,
        }
        assert light == want
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_light_settings_give_up_on_what_the_full_loader_must_explain(tmp_path: Path) -> None:
    cfg = tmp_path / "fazai.toml"
    for bad in ("[daemon\n", '[daemon]\nport = "many"\n', "[daemon]\nport = 0\n"):
        cfg.write_text(bad)
        assert fast.light_settings({"FAZAI_CONFIG": str(cfg)}) is None
    assert fast.light_settings({"FAZAI_CONFIG": str(tmp_path / "missing.toml")}) is None


def test_render_keeps_ids_whole_on_a_narrow_terminal() -> None:
    rows = [
        {"id": f"s_{i:016x}", "status": "done", "updated_at": "2026-12-03T10:00:00.000Z",
         "goal": "a long goal " * 10, "summary": "a long summary " * 10}
        for i in range(3)
    ]  # fmt: skip
    for width in (40, 80, 200):
        out = fast.render_sessions(rows, width=width, color=False)
        assert all(r["id"] in out for r in rows)
        if width >= 80:
            assert all(len(line) <= width for line in out.splitlines()), out


def test_sessions_through_a_real_daemon_without_heavy_imports(tmp_path: Path) -> None:
    d = Daemon(tmp_path / "h", [action(action="done", answer="listed", status="success")], port=PORT)
    d.start()
    try:
        with d.client() as c:
            r = c.post("/agent/sessions", json={"goal": "a goal to list"})
            assert r.status_code in (200, 201), r.text
            sid = r.json()["id"]
        env = {**os.environ, "FAZAI_CONFIG": str(d.config), "FAZAI_DAEMON__PORT": str(PORT), "COLUMNS": "80"}
        p = _cli(["sessions", "--json", "-n", "5"], env)
        assert p.returncode == 0 and "HEAVY []" in p.stderr, p.stderr
        assert [s["id"] for s in json.loads(p.stdout)] == [sid]
        p = _cli(["sessions"], env)
        assert p.returncode == 0 and sid in p.stdout and "a goal to list" in p.stdout, p.stdout + p.stderr
        # A wrong token: the daemon says 401 and the full CLI words it (exit 3), as before.
        p = _cli(["sessions"], {**env, "FAZAI_DAEMON_TOKEN": "wrong-token-value"})
        assert p.returncode == 3 and "401" in p.stderr, p.stderr
    finally:
        d.stop()


def test_sessions_without_a_daemon_read_the_store(tmp_path: Path) -> None:
    cfg = tmp_path / "fazai.toml"
    cfg.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n[daemon]\nport = {PORT + 1}\n')
    env = {**os.environ, "FAZAI_CONFIG": str(cfg)}
    p = _cli(["sessions"], env)
    assert p.returncode == 0 and "no sessions yet" in p.stderr and "HEAVY []" in p.stderr, p.stderr
    # An option the fast path does not know goes to Typer (its usual error, exit 2).
    p = _cli(["sessions", "--bogus"], env)
    assert p.returncode == 2 and "typer" in p.stderr.split("HEAVY", 1)[1], p.stderr
