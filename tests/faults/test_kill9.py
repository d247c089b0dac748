"""kill -9 of a real fazaid: its running command dies with it, a restarted daemon stops what is
left before any resume, and the CLI reports the lost connection, reconnects, and exits 3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from daemon_harness import REPO, action, find_procs, wait_for, write_config

PORTS = iter(range(42110, 42140))


def _gone(marker: str) -> bool:
    return not find_procs(marker)


class FixedDaemon:
    """fazaid on a fixed port (so a restart is at the same address the CLI knows)."""

    def __init__(self, home: Path, script: list[str], port: int | None = None):
        self.port = port or next(PORTS)
        self.config = write_config(home, script, port=self.port)
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> FixedDaemon:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fazai.server"],
            env={**os.environ, "FAZAI_CONFIG": str(self.config)},
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=180, step=0.2)  # generous: a loaded 2-core box imports slowly
        return self

    def has_output(self, text: str) -> bool:
        """Whether some session's stored exec_log shows ``text`` (so a client was sent it)."""
        token = (self.config.parent / "state" / "daemon.token").read_text().strip()
        with httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", headers={"Authorization": f"Bearer {token}"}
        ) as c:
            for row in c.get("/agent/sessions").json():
                r = c.get(f"/agent/sessions/{row['id']}/events", params={"follow": "false"})
                if text in r.text and "exec_log" in r.text:
                    return True
        return False

    def kill9(self) -> None:
        assert self.proc
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _cli(d: FixedDaemon, goal: str, reconnect_s: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fazai.cli.main", "agent", "--daemon", "--json", "--yes", goal],
        env={
            **os.environ,
            "FAZAI_CONFIG": str(d.config),
            "FAZAI_DAEMON__CLIENT_RECONNECT_S": str(reconnect_s),
        },
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def test_kill9_kills_the_command_and_the_cli_exits_3(tmp_path: Path) -> None:
    marker = f"sleep 271.{os.getpid()}"
    d = FixedDaemon(
        tmp_path / "a", [action(action="shell", command=f"echo started; {marker}; echo after")]
    ).start()
    cli = _cli(d, "a long job", reconnect_s=2)
    try:
        wait_for(lambda: find_procs(marker), timeout=180, step=0.1)
        wait_for(lambda: d.has_output("started"), timeout=60, step=0.2)
        d.kill9()
        wait_for(lambda: _gone(marker), timeout=5)  # no orphan changes the machine unsupervised
        out, errs = cli.communicate(timeout=180)
    finally:
        d.stop()
        for pid in find_procs(marker):
            os.kill(pid, signal.SIGKILL)
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 3, errs
    assert "lost the connection to the daemon" in errs and "--resume" in errs
    assert "Traceback" not in errs
    events = [json.loads(x) for x in out.splitlines()]
    assert any(e.get("kind") == "exec_log" and "started" in e["data"]["text"] for e in events)


def test_restart_finds_nothing_left_running_and_the_cli_reconnects(tmp_path: Path) -> None:
    marker = f"sleep 272.{os.getpid()}"
    home = tmp_path / "b"
    # `sh -c` makes the sleep a grandchild: only the group kill or the restart's check can reach it.
    cmd = f"echo started; sh -c '{marker}; true'; echo after"
    d = FixedDaemon(home, [action(action="shell", command=cmd)]).start()
    d2: FixedDaemon | None = None
    cli = _cli(d, "a long job", reconnect_s=60)
    try:
        try:
            wait_for(lambda: len(find_procs(marker)) >= 2 or cli.poll() is not None, timeout=180, step=0.1)
        except AssertionError:
            raise AssertionError(f"not started: {find_procs(marker)}") from None
        if cli.poll() is not None:
            o, e = cli.communicate()
            raise AssertionError(o[-2000:] + e[-2000:])
        # Take the reaper away first (the worst case): only the restart's check remains.
        assert d.proc
        reapers = [p for p in find_procs("declare -A g") if _ppid(p) == d.proc.pid]
        assert reapers, "no reaper process next to fazaid"
        for p in reapers:
            os.kill(p, signal.SIGKILL)
        time.sleep(0.2)
        d.kill9()
        time.sleep(0.5)
        left = find_procs(marker)  # the sleep itself outlives its shell here
        # (Its config rewrites the script: only once the first daemon is gone.)
        d2 = FixedDaemon(home, [action(action="done", answer="resumed", status="success")], port=d.port)
        d2.start()
        wait_for(lambda: _gone(marker), timeout=5)
        out, errs = cli.communicate(timeout=180)
    finally:
        d.stop()
        if d2 is not None:
            d2.stop()
        for pid in find_procs(marker):
            os.kill(pid, signal.SIGKILL)
        if cli.poll() is None:
            cli.kill()
    assert left, "expected the grandchild to outlive the shell once the reaper was gone"
    assert "reconnecting" in errs and "Traceback" not in errs, errs
    assert cli.returncode == 3, errs
    events = [json.loads(x) for x in out.splitlines()][:-1]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # the reconnect replayed without gaps or repeats


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1
