"""The ``ssh`` target: commands run on a node over SSH (asyncssh), for nodes without ``fazai-agent``.

- Key authentication only (the ``[ssh] key`` file); no agent forwarding, no passwords.
- Host keys are checked against FazAI's own known_hosts file (:mod:`fazai.targets.known_hosts`): an
  unknown or changed key is refused with its fingerprint and the command that trusts it.
- One connection per node, opened on first use and reused by every command (each command is one
  channel on it); a dropped connection is opened again on the next command. A connection lost *while*
  a command runs is an error for that command, never a silent retry: it may already have run.
- Commands run in ``bash --noprofile --norc`` with the local target's quiet environment; a timeout or
  an abort kills the command's whole process group on the node (over a second channel).
- Output kept per stream is capped (``max_output_bytes``): past it the command is stopped and the
  result says so, so a node that floods output cannot exhaust the server's memory.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import inspect
import re
import shlex
import time
from pathlib import Path
from typing import Any

import asyncssh

from fazai.targets.base import ExecResult, OutputCallback, Stream, TargetError
from fazai.targets.known_hosts import HostKeyCheck, HostKeyRefused, client_factory, host_pattern
from fazai.targets.local import _QUIET_ENV, _STANDARD_PATH

# The wrapper's first stderr line: the command's process group on the node (for kill on timeout).
_PGID_MARK = "\x1efazai-pgid:"
_PGID_LINE = re.compile(r"\x1efazai-pgid:(\d+)\n")


def remote_command(command: str) -> str:
    """The command line sent to the node's sshd: report the process group, then run ``command``.

    sshd starts each session's shell as a session leader, so its process group holds everything the
    command starts; the wrapper prints that group id first so a timeout can kill all of it.
    """
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in _QUIET_ENV.items())
    path = ":".join(_STANDARD_PATH)
    inner = shlex.join(["bash", "--noprofile", "--norc", "-c", command])
    return (
        "set -- $(cat /proc/$$/stat 2>/dev/null); "
        f"printf '{_PGID_MARK}%s\\n' \"${{5:-$$}}\" >&2; "
        f'PATH="$PATH:{path}" exec env -u BASH_ENV -u ENV {env} {inner}'
    )


class SSHTarget:
    """Runs commands on one node over one reused SSH connection."""

    def __init__(
        self,
        host: str,
        *,
        name: str | None = None,
        port: int = 22,
        user: str = "root",
        key_path: str | Path | None = None,
        known_hosts: str | Path,
        connect_timeout_s: float = 10.0,
        keepalive_s: float = 15.0,
        max_output_bytes: int = 8 * 2**20,
        kill_grace_s: float = 0.5,
        max_sessions: int = 8,
        orphan_wait_s: float = 0.5,
    ):
        self.name = name or host
        self.host, self.port, self.user = host, port, user
        self.key_path = Path(key_path) if key_path else None
        self.known_hosts = Path(known_hosts)
        self.connect_timeout_s = connect_timeout_s
        self.keepalive_s = keepalive_s
        self.max_output_bytes = max_output_bytes
        self.kill_grace_s = kill_grace_s
        # How long to keep reading after the command exits while a background child holds its output.
        self.orphan_wait_s = orphan_wait_s
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()
        # OpenSSH allows 10 sessions per connection (MaxSessions): stay under it, and keep room for
        # the channel that kills a command on timeout.
        self._sessions = asyncio.Semaphore(max_sessions)
        self.connects = 0  # how many connections were opened (reuse is visible in tests and bench)

    def __repr__(self) -> str:
        return f"SSHTarget({self.name!r}, {self.user}@{host_pattern(self.host, self.port)})"

    # -- connection -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a connection is open (it may still turn out dead on the next command)."""
        return self._conn is not None and not self._conn.is_closed()

    async def connect(self) -> asyncssh.SSHClientConnection:
        """The node's connection, opened if needed. :class:`TargetError` (or :class:`HostKeyRefused`)."""
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            self._conn = await self._open()
            self.connects += 1
            return self._conn

    async def _open(self) -> asyncssh.SSHClientConnection:
        where = f"{self.user}@{host_pattern(self.host, self.port)}"
        if self.key_path is None or not self.key_path.is_file():
            raise TargetError(
                f"no SSH key to log in to {self.name} ({where}): {self.key_path or '(none set)'} does not "
                "exist; create one with `fazai ssh keygen` (or set [ssh] key) and add its .pub to the "
                "node's ~/.ssh/authorized_keys"
            )
        check = HostKeyCheck(self.known_hosts)
        try:
            return await asyncio.wait_for(
                asyncssh.connect(
                    self.host,
                    self.port,
                    username=self.user,
                    client_keys=[str(self.key_path)],
                    known_hosts=check,
                    client_factory=client_factory(check),
                    # Nothing from the operator's environment: no ~/.ssh/config, no ssh-agent keys,
                    # no passwords or keyboard prompts.
                    config=[],
                    agent_path=None,
                    password=None,
                    kbdint_auth=False,
                    connect_timeout=self.connect_timeout_s,
                    login_timeout=self.connect_timeout_s,
                    keepalive_interval=self.keepalive_s,
                    keepalive_count_max=3,
                ),
                self.connect_timeout_s + 1,
            )
        except asyncssh.HostKeyNotVerifiable as e:
            raise HostKeyRefused(
                self.host, self.port, check.presented, bool(check.matched), self.known_hosts
            ) from e
        except asyncssh.PermissionDenied as e:
            raise TargetError(
                f"{where} refused the key {self.key_path}: add {self.key_path}.pub to that user's "
                "~/.ssh/authorized_keys on the node (or set [ssh] user / the node's user)"
            ) from e
        except TimeoutError as e:
            raise TargetError(f"{where} did not answer within {self.connect_timeout_s:g}s") from e
        except (OSError, asyncssh.Error) as e:
            raise TargetError(f"cannot connect to {self.name} ({where}): {e}") from e

    async def close(self) -> None:
        """Close the connection (the next command opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()

    # -- commands ---------------------------------------------------------------------------

    async def _process(self, command: str) -> asyncssh.SSHClientProcess[bytes]:
        """Open a channel for ``command``; a dead connection is reopened once (nothing ran yet)."""
        for attempt in (1, 2):
            conn = await self.connect()
            try:
                return await conn.create_process(
                    remote_command(command), encoding=None, stdin=asyncssh.DEVNULL
                )
            except asyncssh.ChannelOpenError as e:
                # The server refused a channel (e.g. MaxSessions) on a live connection: no retry.
                raise TargetError(f"{self.name} refused a new session: {e.reason}") from e
            except (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError) as e:
                # The connection died before the channel opened, so the command never started:
                # safe to try once more on a fresh connection.
                await self.close()
                if attempt == 2:
                    raise TargetError(f"cannot run a command on {self.name}: {e}") from e
        raise AssertionError("unreachable")

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the target enforces it itself)
        on_output: OutputCallback | None = None,
        cancel: asyncio.Event | None = None,
    ) -> ExecResult:
        """Run ``command`` on the node in bash, streaming output (see ``Target.run``)."""
        async with self._sessions:
            return await self._run(command, timeout, on_output, cancel)

    async def _run(
        self,
        command: str,
        timeout: float | None,  # noqa: ASYNC109
        on_output: OutputCallback | None,
        cancel: asyncio.Event | None,
    ) -> ExecResult:
        start = time.monotonic()
        proc = await self._process(command)
        state = _Streams(self.max_output_bytes, on_output)
        readers = [
            asyncio.create_task(state.pump(proc.stdout, "stdout")),
            asyncio.create_task(state.pump(proc.stderr, "stderr")),
        ]
        waiter = asyncio.create_task(_finished(proc, self.orphan_wait_s))
        canceller = asyncio.create_task(cancel.wait()) if cancel is not None else None
        flood = asyncio.create_task(state.flooded.wait())
        timed_out = cancelled = False
        try:
            pending = {waiter, flood} | ({canceller} if canceller else set())
            done, _ = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                cancelled = canceller is not None and canceller in done
                timed_out = not cancelled and flood not in done
                await self._kill(proc, state)
            await asyncio.wait(readers, timeout=self.kill_grace_s + 1)
            for t in readers:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        except BaseException:
            # Cancelled by our caller, or the output callback failed: never leave the command running.
            with contextlib.suppress(Exception):
                await self._kill(proc, state)
            raise
        finally:
            for t in (*readers, flood, *([canceller] if canceller else [])):
                t.cancel()
        if state.lost:
            raise TargetError(
                f"the connection to {self.name} was lost while the command ran; it may or may not have "
                "finished on the node (the next command reconnects)"
            )
        code = proc.returncode if proc.returncode is not None else -1
        err = "".join(state.err)
        if state.flooded.is_set():
            err += (
                f"\n[fazai: output passed {self.max_output_bytes} bytes on one stream; the command was "
                "stopped and the rest discarded]\n"
            )
        return ExecResult(
            exit_code=code,
            stdout="".join(state.out),
            stderr=err,
            duration_s=time.monotonic() - start,
            timed_out=timed_out,
            cancelled=cancelled,
        )

    async def _kill(self, proc: asyncssh.SSHClientProcess[bytes], state: _Streams) -> None:
        """SIGTERM the command's process group on the node, then SIGKILL what is left; close the channel."""
        pgid = await state.pgid_known(0.5)
        if pgid:
            script = (
                f"kill -TERM -- -{pgid} 2>/dev/null; sleep {self.kill_grace_s}; "
                f"kill -KILL -- -{pgid} 2>/dev/null; true"
            )
            with contextlib.suppress(Exception):
                conn = await self.connect()
                await asyncio.wait_for(conn.run(script, check=False), self.kill_grace_s + 5)
        proc.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait_closed(), 2)

    # -- files ------------------------------------------------------------------------------

    async def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write ``data`` to ``path`` over SFTP: a temporary file in the same folder, then a rename."""
        p = Path(path)
        tmp = str(p.with_name(f".{p.name}.fazai-{time.monotonic_ns()}"))
        conn = await self.connect()
        try:
            async with conn.start_sftp_client() as sftp:
                await sftp.makedirs(str(p.parent), exist_ok=True)
                try:
                    async with sftp.open(tmp, "wb") as f:
                        await f.write(data)
                    await sftp.chmod(tmp, mode)
                    await sftp.posix_rename(tmp, path)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await sftp.remove(tmp)
                    raise
        except (asyncssh.Error, OSError) as e:
            raise TargetError(f"cannot write {path} on {self.name}: {e}") from e

    async def get_file(self, path: str) -> bytes:
        """Read the whole file at ``path`` over SFTP."""
        conn = await self.connect()
        try:
            async with conn.start_sftp_client() as sftp, sftp.open(path, "rb") as f:
                return bytes(await f.read())
        except (asyncssh.Error, OSError) as e:
            raise TargetError(f"cannot read {path} on {self.name}: {e}") from e


class _Streams:
    """Reads a process's two streams: decodes, strips the wrapper's pgid line, caps, forwards."""

    def __init__(self, cap: int, on_output: OutputCallback | None):
        self.cap = cap
        self.on_output = on_output
        self.out: list[str] = []
        self.err: list[str] = []
        self.size = {"stdout": 0, "stderr": 0}
        self.flooded = asyncio.Event()
        self.lost = False
        self.pgid: int | None = None
        self._pgid_seen = asyncio.Event()
        self._head = ""  # stderr until the pgid line has been seen

    async def pgid_known(self, wait_s: float) -> int | None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._pgid_seen.wait(), wait_s)
        return self.pgid

    async def _emit(self, stream: Stream, text: str) -> None:
        (self.out if stream == "stdout" else self.err).append(text)
        if self.on_output is not None:
            res = self.on_output(stream, text)
            if inspect.isawaitable(res):
                await res

    async def pump(self, reader: Any, stream: Stream) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            try:
                chunk = await reader.read(65536)
            except (asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError):
                self.lost = True
                chunk = b""
            if chunk and not self.flooded.is_set():
                self.size[stream] += len(chunk)
                if self.size[stream] > self.cap:
                    keep = len(chunk) - (self.size[stream] - self.cap)
                    chunk = chunk[: max(0, keep)]
                    self.flooded.set()
            elif chunk:
                continue  # past the cap: drain and drop until the command is stopped
            text = decoder.decode(chunk, final=not chunk)
            if stream == "stderr" and not self._pgid_seen.is_set():
                self._head += text
                m = _PGID_LINE.search(self._head)
                if m is None and chunk and len(self._head) < 4096:
                    continue
                if m is not None:
                    self.pgid = int(m.group(1))
                    text = self._head[: m.start()] + self._head[m.end() :]
                else:
                    text = self._head
                self._head = ""
                self._pgid_seen.set()
            if text:
                await self._emit(stream, text)
            if not chunk:
                if stream == "stderr":
                    self._pgid_seen.set()  # no pgid line will come now: stop waiting for one
                return


async def _finished(proc: asyncssh.SSHClientProcess[bytes], orphan_wait_s: float) -> None:
    """Wait until the command has exited and its output is read.

    sshd reports the exit status when the shell exits but keeps the channel open while a background
    child (``cmd &``) holds its output, as long as that child lives: stop waiting for it after
    ``orphan_wait_s`` (the local target does the same) and close the channel.
    """
    closed = asyncio.ensure_future(proc.wait_closed())
    try:
        while not closed.done():
            if proc.returncode is not None:
                done, _ = await asyncio.wait({closed}, timeout=orphan_wait_s)
                if not done:
                    proc.close()
                    await asyncio.wait({closed}, timeout=2)
                return
            await asyncio.wait({closed}, timeout=0.02)
    finally:
        closed.cancel()
