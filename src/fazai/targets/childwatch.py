"""Reap asyncio's child processes with a pidfd on Python 3.11 (3.12's default on Linux).

3.11's default ``ThreadedChildWatcher`` starts, and waits for, one thread per process: ~2 ms per
command on a busy machine, paid on every ``shell`` action (``bench/bench_agent_loop.py``). 3.11's own
``PidfdChildWatcher`` is tied to one event loop; this one, like 3.12's, serves whichever loop is
running, so a test's fresh loop or a loop in another thread works too.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("fazai.targets")

_installed = False


class _PidfdWatcher(asyncio.AbstractChildWatcher):
    """One pidfd per child, read by the loop that started it; no threads, no signals."""

    def __enter__(self) -> _PidfdWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def is_active(self) -> bool:
        return True

    def close(self) -> None:
        return None

    def attach_loop(self, loop: Any) -> None:
        return None

    def add_child_handler(self, pid: int, callback: Callable[..., Any], *args: Any) -> None:
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        loop._add_reader(pidfd, self._reap, pid, pidfd, callback, args)  # type: ignore[attr-defined]

    def remove_child_handler(self, pid: int) -> bool:
        # The pidfd reader goes when the child exits; asyncio never asks earlier for one of ours.
        return True

    def _reap(self, pid: int, pidfd: int, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        asyncio.get_running_loop()._remove_reader(pidfd)  # type: ignore[attr-defined]
        try:
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped by someone else: its status is lost
            code = 255
            log.warning("child_status_unknown", pid=pid)
        finally:
            os.close(pidfd)
        callback(pid, code, *args)


def use_pidfd_watcher() -> None:
    """Install the pidfd watcher once, on Python 3.11 with a kernel that has pidfds (idempotent).

    Processes already started keep the watcher they were started with.
    """
    global _installed
    if _installed:
        return
    _installed = True
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))  # Linux < 5.3 has none
    except OSError:
        return
    asyncio.set_child_watcher(_PidfdWatcher())
