"""Run a child process with a time limit, streaming its output line by line.

Two ways to run it:

* ``sandboxed=True``: inside bubblewrap — a read-only view of ``/``, a private writable ``/tmp``, fresh
  ``/dev`` and ``/proc``, every namespace unshared (so no network) and all capabilities dropped. With
  ``acting=True`` (a tool the operator approved to change the machine) the root is bound read-write and
  the network is shared, but it still runs in its own pid/ipc/uts namespaces, dies with its parent and
  cannot outlive its timeout. Without bubblewrap, mode ``auto`` refuses (:class:`SandboxUnavailable`:
  tools are off, no silent plain-subprocess fallback); only an explicit ``[tools] sandbox = "none"``
  runs it as a plain subprocess, and the result says so (``isolation="none"``).
* ``sandboxed=False``: a plain subprocess (FazAI's own helpers, never a model's code).

Either way the child gets its own process group, and at the time limit the whole group is killed,
so a tool that forks cannot outlive its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Stream = Literal["stdout", "stderr"]
LineCallback = Callable[[Stream, str], Awaitable[None] | None]
Isolation = Literal["bwrap", "none"]

# One line longer than this is cut (the rest of it is dropped), so a tool printing a huge line
# cannot exhaust memory.
MAX_LINE = 64 * 1024


def bwrap_path() -> str | None:
    """Path of the ``bwrap`` binary, or None when bubblewrap is not installed."""
    return shutil.which("bwrap")


def _hidden_by_tmp(extra: Sequence[str]) -> list[str]:
    """Paths the child needs that the fresh ``/tmp`` would hide: this Python (a checkout or venv under
    ``/tmp``, as in a CI clone), FazAI's own package, and ``extra``; read-only, outermost first."""
    import fazai

    wanted = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
              str(Path(fazai.__file__).resolve().parents[1]), *extra]  # fmt: skip
    found: list[str] = []
    for p in sorted({os.path.realpath(x) for x in wanted if x}, key=len):
        inside = any(p == f or p.startswith(f + "/") for f in found)
        if p.startswith("/tmp/") and os.path.exists(p) and not inside:
            found.append(p)
    return found


class SandboxUnavailable(RuntimeError):
    """bubblewrap is needed to run a tool and is missing: tools are off (the message says how to fix)."""


TOOLS_OFF = (
    "tools are off: bubblewrap (bwrap) is not installed, and generated tools are only ever validated and run "
    'inside it. Install it (apt-get install bubblewrap), or set [tools] sandbox = "none" to accept '
    "running model-written code without isolation"
)


def acting_prefix(bwrap: str) -> list[str]:
    """bubblewrap for an approved acting tool: the real filesystem (read-write) and network, but its own
    pid/ipc/uts namespaces, killed with its parent, in a new session."""
    return [
        *(bwrap, "--bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc"),
        *("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session", "--"),
    ]


def bwrap_prefix(
    bwrap: str, *, writable: Sequence[str] = (), readable: Sequence[str] = (), private_tmp: bool = True
) -> list[str]:
    """The bubblewrap argument list that goes before the command.

    ``writable`` paths are bound read-write on top of the read-only root (e.g. a scratch dir);
    ``readable`` paths under ``/tmp`` stay visible (read-only) through the sandbox's empty ``/tmp``.
    ``private_tmp=False`` keeps the real ``/tmp`` visible, read-only like the rest (a read-only tool
    reading a file there), with only ``writable`` paths writable.
    """
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    if private_tmp:
        args += ["--tmpfs", "/tmp"]
        for path in _hidden_by_tmp(readable):
            args += ["--ro-bind", path, path]
    for path in writable:
        args += ["--bind", path, path]
    args += ["--unshare-all", "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        # As root bwrap keeps capabilities unless told otherwise; a sandbox must not keep them.
        args += ["--cap-drop", "ALL"]
    return [*args, "--"]


@dataclass(slots=True)
class RunResult:
    """What happened to one child process."""

    exit_code: int | None
    timed_out: bool
    duration_s: float
    isolation: Isolation
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def resolve_isolation(mode: Literal["auto", "bwrap", "none"]) -> tuple[str | None, Isolation]:
    """Decide how declared tests run: ``(bwrap binary or None, isolation name)``.

    ``bwrap`` mode without bubblewrap installed is an error with the fix in the message.
    """
    if mode == "none":
        return None, "none"
    found = bwrap_path()
    if found:
        return found, "bwrap"
    raise SandboxUnavailable(TOOLS_OFF)


async def run_streaming(
    argv: Sequence[str],
    *,
    timeout_s: float,
    sandboxed: bool = False,
    sandbox_mode: Literal["auto", "bwrap", "none"] = "auto",
    acting: bool = False,
    scratch: str | None = None,
    stdin_data: bytes | None = None,
    on_line: LineCallback | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    keep_lines: int = 2000,
) -> RunResult:
    """Run ``argv``; call ``on_line(stream, line)`` for each output line as it arrives.

    The process group is killed at ``timeout_s`` (``timed_out=True``, ``exit_code=None``).
    At most ``keep_lines`` lines per stream are kept in the result (the callback sees them all).
    Raises :class:`SandboxUnavailable` when ``sandboxed`` and bubblewrap is missing (mode ``auto``/``bwrap``).
    """
    isolation: Isolation = "none"
    cmd = list(argv)
    if sandboxed:
        bwrap, isolation = resolve_isolation(sandbox_mode)
        if bwrap and acting:
            cmd = acting_prefix(bwrap) + cmd
        elif bwrap and scratch:
            cmd = bwrap_prefix(bwrap, writable=[scratch], private_tmp=False) + cmd
        elif bwrap:
            paths = [a for a in cmd if a.startswith("/")] + ([cwd] if cwd else [])
            cmd = bwrap_prefix(bwrap, readable=paths) + cmd
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
        limit=MAX_LINE,
    )
    result = RunResult(exit_code=None, timed_out=False, duration_s=0.0, isolation=isolation)

    async def pump(stream: asyncio.StreamReader, name: Stream, keep: list[str]) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:
                # Line longer than the limit: take what is buffered and go on.
                raw = await stream.read(MAX_LINE)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if len(keep) < keep_lines:
                keep.append(line)
            if on_line is not None:
                maybe = on_line(name, line)
                if asyncio.iscoroutine(maybe):
                    await maybe

    async def feed() -> None:
        if stdin_data is None or proc.stdin is None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(stdin_data)
            await proc.stdin.drain()
            proc.stdin.close()

    assert proc.stdout is not None and proc.stderr is not None
    pumps = asyncio.gather(
        feed(), pump(proc.stdout, "stdout", result.stdout), pump(proc.stderr, "stderr", result.stderr)
    )
    try:
        await asyncio.wait_for(asyncio.shield(pumps), timeout=timeout_s)
        result.exit_code = await asyncio.wait_for(proc.wait(), timeout=max(0.1, timeout_s))
    except TimeoutError:
        result.timed_out = True
        _kill_group(proc.pid)
        await proc.wait()
        # The pipes close once every process of the group is gone; don't wait forever if a
        # grandchild escaped the group.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pumps, timeout=2.0)
        if not pumps.done():
            pumps.cancel()
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        pumps.cancel()
        raise
    finally:
        result.duration_s = time.perf_counter() - start
    return result


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
