"""The ``local`` target: commands run on this machine with ``bash`` (see :func:`shell_argv`).

Each command gets its own session and process group, so a timeout or an abort can kill everything it
started (pipes, subshells, ``sleep`` children), not just the shell; and it dies with this process,
``kill -9`` included (:mod:`fazai.targets.reaper`). Output is read in chunks as it
arrives and handed to the caller immediately; the full text is also kept for the result.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import inspect
import os
import signal
import tempfile
import time
from pathlib import Path

from fazai.targets.base import ExecResult, OutputCallback, Stream, TargetError
from fazai.targets.childwatch import use_pidfd_watcher
from fazai.targets.reaper import OWNER_VAR, REAPER, owner_mark

# Non-interactive defaults: a pager or a prompt would hang a command that has no terminal.
_QUIET_ENV = {
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
    "TERM": "dumb",
    "DEBIAN_FRONTEND": "noninteractive",
}


# Login PATH entries a root shell expects (``ss``, ``ip``, ``nft`` live in sbin), added when missing.
_STANDARD_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def shell_argv(command: str) -> list[str]:
    """The argv that runs ``command`` in bash, without reading any profile or rc file.

    Why not ``bash -lc``: an operator's login files are not ours to trust on every command. Seen
    here: ``~/.bashrc`` running ``pyenv init`` blocked 60 s on a stale rehash lock and printed to
    stderr, so every command "timed out". :func:`shell_env` gives the PATH a login shell would.
    """
    return ["bash", "--noprofile", "--norc", "-c", command]


# What a command may see of the daemon's environment. Nothing else passes: the daemon's environment
# holds API keys (OPENAI_API_KEY, FAZAI_DAEMON_TOKEN, …) and `env` / `printenv` are read-only, so a
# model steered by hostile text could otherwise copy them into the session log.
ALLOWED_ENV = frozenset({"PATH", "LANG", "TERM", "HOME", "USER", "LOGNAME", "TZ", "SHELL"})
ALLOWED_ENV_PREFIXES = ("LC_",)


def scrubbed_environ(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Only the allow-listed variables (:data:`ALLOWED_ENV`, ``LC_*``) of ``environ`` (default: ours)."""
    src = os.environ if environ is None else environ
    return {k: v for k, v in src.items() if k in ALLOWED_ENV or k.startswith(ALLOWED_ENV_PREFIXES)}


def shell_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A scrubbed environment for unattended commands (no secrets, no pagers, no prompts).

    Only :data:`ALLOWED_ENV` (and ``LC_*``) pass from this process; ``extra`` is added on top (the
    caller's own choice). ``BASH_ENV``/``ENV`` are dropped (a non-interactive bash would source them)
    and the standard sbin/bin directories are appended to ``PATH`` when missing.
    """
    merged = {**scrubbed_environ(), **_QUIET_ENV, **(extra or {})}
    env = {k: v for k, v in merged.items() if k not in ("BASH_ENV", "ENV")}
    path = [p for p in env.get("PATH", "").split(":") if p]
    env["PATH"] = ":".join(path + [p for p in _STANDARD_PATH if p not in path])
    return env


class LocalTarget:
    """Runs commands on the local machine."""

    def __init__(
        self,
        *,
        name: str = "local",
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        kill_grace_s: float = 0.2,
        orphan_wait_s: float = 0.5,
    ):
        self.name = name
        self.cwd = str(cwd) if cwd is not None else None
        # The owner's mark lets a restarted daemon find commands a dead one left (see reaper.py).
        self._env = {**shell_env(env), OWNER_VAR: owner_mark()}
        # How long SIGTERM has before SIGKILL, and how long to keep reading after the shell exits
        # while a background child still holds the pipes.
        self.kill_grace_s = kill_grace_s
        self.orphan_wait_s = orphan_wait_s

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the target enforces it itself)
        on_output: OutputCallback | None = None,
        cancel: asyncio.Event | None = None,
    ) -> ExecResult:
        """Run ``command`` in bash in its own process group (see ``Target.run``)."""
        start = time.monotonic()
        use_pidfd_watcher()
        try:
            # No preexec_fn (it makes Python fork() the whole daemon instead of vfork()) and no
            # death-signal wrapper: the reaper kills the group if this process dies (reaper.py).
            proc = await asyncio.create_subprocess_exec(
                *shell_argv(command),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                cwd=self.cwd,
                env=self._env,
            )
        except OSError as e:
            raise TargetError(f"cannot start bash on {self.name}: {e}") from e
        REAPER.register(proc.pid)
        try:
            return await self._supervise(proc, start, timeout, on_output, cancel)
        finally:
            REAPER.release(proc.pid)

    async def _supervise(
        self,
        proc: asyncio.subprocess.Process,
        start: float,
        timeout: float | None,  # noqa: ASYNC109 (the target enforces it itself)
        on_output: OutputCallback | None,
        cancel: asyncio.Event | None,
    ) -> ExecResult:
        out: list[str] = []
        err: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            asyncio.create_task(_pump(proc.stdout, "stdout", out, on_output)),
            asyncio.create_task(_pump(proc.stderr, "stderr", err, on_output)),
        ]
        waiter = asyncio.create_task(_exited(proc))
        canceller = asyncio.create_task(cancel.wait()) if cancel is not None else None
        timed_out = cancelled = False
        try:
            pending = {waiter} | ({canceller} if canceller else set())
            done, _ = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                cancelled = canceller is not None and canceller in done
                timed_out = not cancelled
                await self._kill_group(proc)
            # A background child may keep the pipes open after the shell exits: stop waiting for it.
            _, still = await asyncio.wait(readers, timeout=self.orphan_wait_s)
            for task in still:
                task.cancel()
            if still:
                # Close our ends of the pipes now rather than when the orphan exits (asyncio exposes no
                # public way: the transport's close() only closes pipes once the process has exited).
                transport = getattr(proc, "_transport", None)
                if transport is not None:
                    transport.close()
            for task in readers:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        except BaseException:
            # Cancelled by our caller, or the output callback failed: never leave the command running.
            await self._kill_group(proc)
            for task in readers:
                task.cancel()
            raise
        finally:
            if canceller is not None:
                canceller.cancel()
        await waiter
        return ExecResult(
            exit_code=proc.returncode if proc.returncode is not None else -1,
            stdout="".join(out),
            stderr="".join(err),
            duration_s=time.monotonic() - start,
            timed_out=timed_out,
            cancelled=cancelled,
        )

    async def _kill_group(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the command's whole process group, then SIGKILL whatever is left."""
        pgid = proc.pid  # start_new_session: the shell leads its own group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_exited(proc), self.kill_grace_s)
        # Children that ignored SIGTERM (or outlived the shell) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        await _exited(proc)

    async def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename)."""
        await asyncio.to_thread(_write_atomic, Path(path), data, mode)

    async def get_file(self, path: str) -> bytes:
        """Read the whole file at ``path``."""
        try:
            return await asyncio.to_thread(Path(path).read_bytes)
        except OSError as e:
            raise TargetError(f"cannot read {path} on {self.name}: {e}") from e


async def _exited(proc: asyncio.subprocess.Process) -> int:
    """Wait until the shell itself exits.

    Not ``proc.wait()``: asyncio's version also waits for the pipes to close, which a background child
    (``cmd &``) can hold open for as long as it lives. A pidfd says exactly when the process ends.
    """
    if proc.returncode is None:
        try:
            fd = os.pidfd_open(proc.pid)
        except OSError:  # no pidfd (old kernel) or already reaped: fall back to polling below
            fd = -1
        if fd >= 0:
            loop = asyncio.get_running_loop()
            ready = loop.create_future()
            loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(fd)
                os.close(fd)
    # The child watcher records the status right after the exit.
    delay = 0.0001  # the watcher thread is microseconds behind the pidfd: poll finely first
    while proc.returncode is None:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return proc.returncode


async def _pump(
    reader: asyncio.StreamReader, stream: Stream, parts: list[str], on_output: OutputCallback | None
) -> None:
    # Incremental decoding: a multi-byte character split across reads is not mangled.
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    while True:
        chunk = await reader.read(65536)
        text = decoder.decode(chunk, final=not chunk)
        if text:
            parts.append(text)
            if on_output is not None:
                res = on_output(stream, text)
                if inspect.isawaitable(res):
                    await res
        if not chunk:
            return


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as e:
        raise TargetError(f"cannot write {path}: {e}") from e
