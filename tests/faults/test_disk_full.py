"""A full disk under a real fazaid (state on a small tmpfs): the session stops with the reason, no
accepted event is lost (seq contiguous), the row is not left running, new runs get a 503 with a
message, and a start on a full disk is one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import REPO, Daemon, action, find_procs, run_stream, sse_messages, wait_for


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {p.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: Path, leave_bytes: int) -> Path:
    """A filler file that leaves about ``leave_bytes`` free on ``path``'s filesystem."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    filler = path / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))
    return filler


def test_disk_full_stops_the_session_and_loses_nothing(tmpfs: Path, tmp_path: Path) -> None:
    marker = f"fazai-diskfull-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "home"
    script = [
        action(
            action="shell",
            command=f"for i in $(seq 1 400); do head -c 8000 /dev/zero | tr '\\0' y; echo; "
            f"sleep 0.005; done; sleep 30 # {marker}",
        ),
        action(action="done", answer="never reached", status="success"),
    ]
    d = Daemon(home, script, "disk_reserve_mib = 1").start(timeout=180)
    # The state dir moves onto the tmpfs: restart the daemon there.
    d.stop()
    d.config.write_text(d.config.read_text().replace(f'"{home / "state"}"', f'"{tmpfs / "state"}"'))
    d.home = tmpfs  # so d.token reads <tmpfs>/state/daemon.token
    d.start(timeout=180)
    try:
        assert (tmpfs / "state" / "fazai.db.reserve").stat().st_size == 1024 * 1024
        filler = _fill(tmpfs, 300_000)
        with d.client() as c:
            with c.stream("POST", "/agent/generate", json={"goal": "print a lot", "yes": True}) as r:
                sid = r.headers["X-Session-Id"]
                seen, end = run_stream(c, r)
            assert end is not None and end["status"] == "failed", (end, seen[-3:])
            row = c.get(f"/agent/sessions/{sid}").json()
            assert row["status"] == "failed" and "could not be written" in (row["summary"] or "")
            stored = [m for n, m, _ in sse_messages(c.get(f"/agent/sessions/{sid}/events")) if n == "message"]
            # Nothing a client saw is missing, seq has no gap, and the log says why it stopped.
            assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
            assert stored[: len(seen)] == seen
            assert stored[-1]["kind"] == "error" and "could not be written" in stored[-1]["data"]["message"]
            assert "full" in stored[-1]["data"]["message"]
            assert any(e["kind"] == "exec_log" for e in stored)
            # The command was killed with the run.
            wait_for(lambda: not find_procs(marker), timeout=10)
            # A new run is refused with a reason while the disk is full.
            r = c.post("/agent/generate", json={"goal": "another"})
            assert r.status_code == 503, r.text
            assert "free disk space" in r.json()["detail"]
            assert c.get("/healthz").status_code == 200
            # Space again: runs are accepted once the reserve is back.
            filler.unlink()

            def accepted() -> bool:
                with c.stream("POST", "/agent/generate", json={"goal": "again", "yes": True}) as r2:
                    if r2.status_code != 200:
                        r2.read()
                        return False
                    run_stream(c, r2)
                    return True

            wait_for(accepted, timeout=15, step=0.5)
    finally:
        d.stop()
        for pid in find_procs(marker):
            os.kill(pid, 9)
    assert not any("Traceback" in ln for ln in d.lines)


def test_start_on_a_full_disk_is_one_clear_line(tmpfs: Path, tmp_path: Path) -> None:
    from daemon_harness import write_config

    cfg = write_config(tmp_path / "h", [action(action="done", answer="x")])
    cfg.write_text(cfg.read_text().replace(f'"{tmp_path / "h" / "state"}"', f'"{tmpfs / "state"}"'))
    (tmpfs / "state").mkdir(mode=0o700)
    _fill(tmpfs, 0)
    p = subprocess.run(
        [sys.executable, "-m", "fazai.server", "--port", "0"],
        env={**os.environ, "FAZAI_CONFIG": str(cfg)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert p.returncode != 0
    assert "Traceback" not in p.stderr, p.stderr
    assert "disk is full" in p.stderr or "No space left" in p.stderr, p.stderr
