"""A real systemd user manager and a real journald for tests, in a private mount namespace.

CI machines (containers) are not booted with systemd, so ``systemctl`` there fails with "System has
not been booted with systemd as init system". Debian's own systemd binaries still run: ``unshare -m``
gives this process tree its own ``/run/systemd`` (a tmpfs with ``system/``, the marker systemd checks),
a ``systemd-journald`` writes its volatile journal into a test directory (bound on ``/run/log/journal``)
and ``systemd --user`` serves ``systemctl --user`` on ``$XDG_RUNTIME_DIR/systemd/private`` — a socket
path outside the namespace, so the sampler under test runs the real ``systemctl`` from anywhere. Nothing
of it is visible to the rest of the machine (its ``/run/systemd`` stays as it is).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SYSTEMD = Path("/lib/systemd/systemd")
JOURNALD = Path("/lib/systemd/systemd-journald")

# ReadKMsg=no: the machine's kernel messages (some at err) must not leak into the counts under test.
_JOURNALD_CONF = """[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToWall=no
ForwardToConsole=no
RateLimitBurst=0
"""

_SCRIPT = """#!/bin/bash
set -e
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/system /run/systemd/journald.conf.d /run/log/journal
cp "$BASE/journald.conf" /run/systemd/journald.conf.d/fazai-test.conf
mount --bind "$BASE/journal" /run/log/journal
export XDG_RUNTIME_DIR="$BASE/rt"
/lib/systemd/systemd-journald &
for _ in $(seq 100); do [ -S /run/systemd/journal/stdout ] && break; sleep 0.05; done
exec /lib/systemd/systemd --user
"""


def available() -> str | None:
    """Why the real user manager cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (a mount namespace with its own /run/systemd)"
    for need in (SYSTEMD, JOURNALD):
        if not need.exists():
            return f"{need} is not installed"
    for tool in ("unshare", "systemctl", "systemd-run", "journalctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


class UserSystemd:
    """``systemd --user`` plus ``systemd-journald``; ``systemctl`` / ``journalctl`` are the argv
    prefixes that reach them (what the agent's settings of the same names take)."""

    def __init__(self) -> None:
        # Short: the private socket's path must fit a sockaddr_un (108 bytes).
        self.base = Path(tempfile.mkdtemp(prefix="fz-sd-", dir="/tmp"))
        self.rt = self.base / "rt"
        self.journal = self.base / "journal"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def systemctl(self) -> list[str]:
        return ["env", f"XDG_RUNTIME_DIR={self.rt}", "systemctl", "--user"]

    @property
    def journalctl(self) -> list[str]:
        return ["journalctl", "-D", str(self.journal)]

    def start(self, timeout: float = 30.0) -> UserSystemd:
        self.rt.mkdir(mode=0o700)
        self.journal.mkdir()
        (self.base / "journald.conf").write_text(_JOURNALD_CONF)
        script = self.base / "boot.sh"
        script.write_text(_SCRIPT)
        script.chmod(0o755)
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", str(script)],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BASE": str(self.base)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # one process group: stop() ends the manager, journald and units
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"the test systemd exited {self.proc.returncode}: {err}")
            up = self.ctl("show", "-p", "SystemState", check=False)
            if up.returncode == 0 and any(self.journal.glob("*/*.journal")):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the test systemd user manager did not come up")

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``systemctl --user ARGS`` against this manager."""
        return subprocess.run(
            [*self.systemctl, *args], capture_output=True, text=True, timeout=30, check=check
        )

    def run_unit(self, unit: str, command: str, *props: str) -> None:
        """A transient service ``unit`` running ``sh -c command`` (``props``: ``Restart=always``, …)."""
        argv = ["systemd-run", "--user", "--quiet", f"--unit={unit}"]
        argv += [a for p in props for a in ("-p", p)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_RUNTIME_DIR": str(self.rt)}
        subprocess.run([*argv, "sh", "-c", command], env=env, check=True, timeout=30, capture_output=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc is not None:
            # Units the manager started live in their own cgroups but in our process group: end them.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def user_systemd():
    """A running :class:`UserSystemd` (skipped where it cannot run)."""
    why = available()
    if why:
        pytest.skip(f"no test systemd: {why}")
    sd = UserSystemd().start()
    try:
        yield sd
    finally:
        sd.stop()
