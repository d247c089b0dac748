"""No command outlives the process that started it (``kill -9`` of fazaid included).

Each command runs in its own process group (so an abort kills pipes and children too). Two
mechanisms make sure a dead daemon leaves no group behind, changing the machine unsupervised:

* a tiny reaper (``bash``, one per process, in its own session) holds the read end of a pipe on
  which this process registers each command's group; when this process dies, however, the pipe
  reaches end of file and the reaper SIGKILLs every group still registered;
* every command carries ``FAZAI_CMD_OWNER=<pid>:<start time>`` in its environment and, when a
  registry folder is configured (the daemon's ``<runtime_dir>/commands``), has a file there while
  it runs; :func:`kill_orphans` (run at daemon start, before any session resumes) kills the
  processes of a registered group whose owner no longer runs — the last line, should the reaper
  itself have been killed. What a command left running on purpose after it ended (``nohup srv &``)
  is not registered any more, so it is left alone.

Why no ``PR_SET_PDEATHSIG`` on the shell as a third line: it needs a ``preexec_fn`` (Python then
``fork()``s the whole daemon, ~15 ms a command) or an exec of ``setpriv --pdeathsig`` (~1 ms a
command, most of the loop's overhead over a bare ``bash -c``), and it only reaches the shell, not its
children, which the group kill above does. What it would add is the microseconds between the start
of a command and its registration; a service manager's cgroup kill (``KillMode=mixed``) covers those.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path

import structlog

log = structlog.get_logger("fazai.targets")

OWNER_VAR = "FAZAI_CMD_OWNER"

# Reads "+PGID" / "-PGID" lines; at end of file (the owner died) kills what is still registered.
_REAPER = r"""
declare -A g
while IFS= read -r line; do
  case $line in +*) g[${line#+}]=1 ;; -*) unset "g[${line#-}]" ;; esac
done
for pg in "${!g[@]}"; do kill -KILL -- "-$pg" 2>/dev/null; done
"""


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks since boot


_mark: tuple[int, str] | None = None


def owner_mark() -> str:
    """This process's mark: ``<pid>:<start time>`` (a reused pid has another start time)."""
    global _mark
    pid = os.getpid()
    if _mark is None or _mark[0] != pid:  # read once per process (a fork has a new pid)
        _mark = (pid, f"{pid}:{_start_time(pid) or 0}")
    return _mark[1]


class Reaper:
    """The per-process reaper of command groups (see the module docstring)."""

    def __init__(self) -> None:
        self.registry: Path | None = None
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._pid = -1

    def _ensure(self) -> bool:
        if self._proc is not None and self._pid == os.getpid() and self._proc.poll() is None:
            return True
        r, w = os.pipe()  # non-inheritable: no command keeps the write end (and the reaper) alive
        try:
            self._proc = subprocess.Popen(
                ["bash", "--noprofile", "--norc", "-c", _REAPER],
                stdin=r,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C must not take it away from its groups
                close_fds=True,
            )
        except OSError as e:
            os.close(w)
            log.warning("reaper_unavailable", error=str(e))
            return False
        finally:
            os.close(r)
        self._fd, self._pid = w, os.getpid()
        return True

    def _send(self, line: str) -> None:
        with self._lock:
            if not self._ensure():
                return
            try:
                os.write(self._fd, line.encode())
            except OSError:
                self._proc = None  # restarted on the next command

    def register(self, pgid: int) -> None:
        """Kill group ``pgid`` should this process die before :meth:`release`."""
        self._send(f"+{pgid}\n")
        if self.registry is not None:
            with contextlib.suppress(OSError):
                try:
                    (self.registry / str(pgid)).write_text(owner_mark())
                except FileNotFoundError:  # the first command (or the folder was removed): make it
                    self.registry.mkdir(parents=True, exist_ok=True, mode=0o700)
                    (self.registry / str(pgid)).write_text(owner_mark())

    def release(self, pgid: int) -> None:
        """Group ``pgid`` is over (its leader was reaped)."""
        self._send(f"-{pgid}\n")
        if self.registry is not None:
            with contextlib.suppress(OSError):
                (self.registry / str(pgid)).unlink()


REAPER = Reaper()


def _alive(mark: str) -> bool:
    pid_s, _, start = mark.partition(":")
    return pid_s.isdigit() and _start_time(int(pid_s)) == start


def _pgid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def kill_orphans(registry: Path) -> list[int]:
    """Kill the commands still running for an owner that died (a ``kill -9``-ed daemon); their pids.

    Only groups registered in ``registry`` by a dead owner, and in them only the processes that
    carry that owner's mark (a pid or group id reused since is not touched).
    """
    try:
        entries = [(int(f.name), f.read_text().strip(), f) for f in registry.iterdir() if f.name.isdigit()]
    except OSError:
        return []
    dead = {(pg, mark): f for pg, mark, f in entries if not _alive(mark)}
    killed: list[int] = []
    if dead:
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            pid = int(d.name)
            pg = _pgid(pid)
            if pg is None or not any(pg == g for g, _ in dead):
                continue
            try:
                env = (d / "environ").read_bytes()
            except OSError:
                continue
            marks = {
                v.split(b"=", 1)[1].decode()
                for v in env.split(b"\0")
                if v.startswith(OWNER_VAR.encode() + b"=")
            }
            if (pg, next(iter(marks), "")) in dead:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        for f in dead.values():
            with contextlib.suppress(OSError):
                f.unlink()
    if killed:
        log.warning("orphan_commands_killed", pids=killed, why="left running by a process that died")
    return killed
