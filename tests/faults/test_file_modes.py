"""The state folder is 0700 and the database and logs 0600, checked at every start (real fazaid)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_harness import REPO, Daemon, action, write_config


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _start(home: Path, extra: str = "") -> Daemon:
    old = os.umask(0o022)  # the usual default: what the quick start ran with
    try:
        return Daemon(home, [action(action="done", answer="ok")], extra).start(timeout=180)
    finally:
        os.umask(old)


def test_fresh_start_creates_private_state(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    log = home / "logs" / "fazaid.log"
    d = _start(home, f'log_file = "{log}"')
    try:
        with d.client() as c:
            r = c.post("/agent/generate", json={"goal": "say ok"})
            assert r.status_code == 200
        state = home / "state"
        assert mode(state) == 0o700
        assert mode(state / "fazai.db") == 0o600
        for side in ("fazai.db-wal", "fazai.db-shm"):
            if (state / side).exists():
                assert mode(state / side) == 0o600, side
        assert mode(state / "daemon.token") == 0o600
        assert mode(log) == 0o600 and "daemon_ready" in log.read_text()
    finally:
        d.stop()


def test_loose_modes_are_fixed_and_logged(tmp_path: Path) -> None:
    home = tmp_path / "loose"
    state = home / "state"
    state.mkdir(parents=True)
    os.chmod(state, 0o755)
    db = state / "fazai.db"
    db.touch()
    os.chmod(db, 0o644)
    d = _start(home)
    try:
        assert mode(state) == 0o700 and mode(db) == 0o600
        fixed = [ln for ln in d.lines if "file_mode_fixed" in ln]
        assert any(str(state) in ln and "0o755" in ln for ln in fixed), d.lines
        assert any(str(db) in ln and "0o644" in ln for ln in fixed), d.lines
    finally:
        d.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the folder to another user")
def test_state_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "foreign"
    cfg = write_config(home, [action(action="done", answer="ok")])
    state = home / "state"
    state.mkdir()
    os.chown(state, 65534, 65534)
    p = subprocess.run(
        [sys.executable, "-m", "fazai.server", "--port", "0"],
        env={**os.environ, "FAZAI_CONFIG": str(cfg)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert p.returncode != 0
    assert f"{state} belongs to uid 65534" in p.stderr and "chown" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (state / "fazai.db").exists()


def test_worker_log_is_private(tmp_path: Path) -> None:
    from fazai.models.worker_client import _spawn

    log = tmp_path / "run" / "worker.log"
    log.parent.mkdir()
    old = os.umask(0o022)
    try:
        proc = _spawn([sys.executable, "-c", "print('worker says hi')"], log)
        proc.wait(30)
    finally:
        os.umask(old)
    assert mode(log) == 0o600 and "worker says hi" in log.read_text()
    os.chmod(log, 0o644)  # loosened by someone: the next start tightens it
    _spawn([sys.executable, "-c", "pass"], log).wait(30)
    assert mode(log) == 0o600
