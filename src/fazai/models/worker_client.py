"""The ``worker`` provider: a client of the resident ``fazai-worker`` over its Unix socket.

One connection per provider, multiplexed: every request carries an ``id`` and a reader task routes
the events back to whoever waits for that id. When no worker runs and ``[worker] autostart`` is on,
the provider starts one (detached) and waits for its socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fazai.config import Settings, WorkerSettings
from fazai.models.base import (
    Chunk,
    Constraint,
    Final,
    Message,
    ProviderError,
    SessionParams,
    Token,
    Usage,
)

NAME = "worker"
_MAX_LINE = 32 * 1024 * 1024


def _sampling(params: SessionParams | None) -> dict[str, Any] | None:
    if params is None:
        return None
    d = asdict(params)
    d["stop"] = list(d["stop"])
    if d["seed"] is None:
        del d["seed"]
    return d


_STOP_WAIT_S = 10.0  # how long a stopped-early stream waits for the worker's stop event


def _err(message: str, hint: str = "", retryable: bool = True) -> ProviderError:
    return ProviderError(message, provider=NAME, hint=hint, retryable=retryable)


class WorkerSession:
    """A session living in the worker (its KV cache stays there between turns)."""

    def __init__(self, provider: WorkerProvider, session_id: str):
        self.id = session_id
        self._provider = provider
        self.closed = False

    async def generate(
        self,
        messages: list[Message],
        *,
        constraint: Constraint | None = None,
        params: SessionParams | None = None,
    ) -> AsyncIterator[Chunk]:
        """Stream the answer; the last chunk is a :class:`Final` with the worker's usage."""
        if self.closed:
            raise _err("session is closed", retryable=False)
        req: dict[str, Any] = {
            "op": "generate",
            "session": self.id,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        if params is not None:
            req["params"] = _sampling(params)
        if constraint is not None:
            if constraint.grammar:
                req["grammar"] = constraint.grammar
            elif constraint.json_schema:
                req["json_schema"] = constraint.json_schema
        queue = await self._provider._request(req)
        done = False
        try:
            while True:
                ev = await queue.get()
                kind = ev.get("event")
                if kind == "token":
                    yield Token(ev["text"])
                elif kind == "stop":
                    done = True
                    u = ev.get("usage") or {}
                    yield Final(
                        text=ev.get("text", ""),
                        stop_reason=ev.get("reason", "stop"),
                        usage=Usage(**{k: u[k] for k in Usage.__dataclass_fields__ if k in u}),
                        served_by=NAME,
                        model=ev.get("model", self._provider.model),
                    )
                    return
                elif kind == "error":
                    done = True
                    raise _err(ev.get("message", "worker error"))
        finally:
            if not done:
                # The caller stopped reading: don't let the worker generate for nobody, and wait for its
                # stop (bounded): the session accepts its next generate only once this one has ended.
                with contextlib.suppress(Exception):
                    await self.abort()
                    async with asyncio.timeout(_STOP_WAIT_S):
                        while (await queue.get()).get("event") not in ("stop", "error"):
                            pass
            self._provider._forget(queue)

    async def abort(self) -> None:
        """Stop this session's generation in progress (its stream ends with ``aborted``)."""
        await self._provider._call({"op": "abort", "session": self.id})

    async def close(self) -> None:
        """Forget the session and its cache in the worker."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(ProviderError):
            await self._provider._call({"op": "close_session", "session": self.id})


class WorkerProvider:
    """Provider backed by the resident worker."""

    name = NAME
    supports_grammar = True

    def __init__(
        self,
        target: Settings | Path | str,
        *,
        worker: WorkerSettings | None = None,
        model: str | None = None,
        log_path: Path | None = None,
        on_progress: Callable[[str], None] | None = None,
        worker_args: list[str] | None = None,
    ):
        """``target``: the loaded :class:`Settings` (socket, autostart, model, log) or a socket path."""
        if isinstance(target, Settings):
            self.socket_path = target.worker_socket
            self.worker = worker or target.worker
            default_log = target.paths.runtime_dir / "worker.log"
        else:
            self.socket_path = Path(target)
            self.worker = worker or WorkerSettings()
            default_log = self.socket_path.with_name("worker.log")
        self.model = model or self.worker.model
        self.log_path = log_path or default_log
        self._on_progress = on_progress or (lambda _msg: None)
        self._worker_args = worker_args or []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._connect_lock = asyncio.Lock()
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> WorkerProvider:
        """Build from the loaded settings (socket, autostart, model)."""
        return cls(settings, **kwargs)

    # ---- connection ------------------------------------------------------------------------
    async def _ensure_connected(self) -> None:
        async with self._connect_lock:
            if self._writer is not None and not self._writer.is_closing():
                return
            try:
                await self._open()
            except (FileNotFoundError, ConnectionRefusedError) as e:
                if not self.worker.autostart:
                    raise _err(
                        f"no worker listens on {self.socket_path}",
                        hint="start it with `fazai-worker` (or `systemctl start fazai-worker`), "
                        "or set [worker] autostart = true",
                    ) from e
                await self._autostart()
                await self._open()

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(
            str(self.socket_path), limit=_MAX_LINE
        )
        self._reader_task = asyncio.create_task(self._read_loop())

    async def _autostart(self) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "fazai.worker", "--socket", str(self.socket_path), "--model", self.model]
        cmd += self._worker_args
        self._on_progress(f"starting the model worker ({self.model}); log: {self.log_path}")
        self.process = _spawn(cmd, self.log_path)
        deadline = time.monotonic() + self.worker.startup_timeout_s
        last_note = time.monotonic()
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                tail = _tail(self.log_path)
                # Another client may have won the race to start it.
                if self.socket_path.exists() and "already listens" in tail:
                    return
                raise _err(
                    f"the model worker exited with code {code} while starting:\n{tail}",
                    hint=f"full log: {self.log_path}",
                    retryable=False,
                )
            if self.socket_path.exists():
                try:
                    _r, w = await asyncio.open_unix_connection(str(self.socket_path))
                    w.close()
                    return
                except OSError:
                    pass
            if time.monotonic() - last_note > 5:
                self._on_progress("still loading the model…")
                last_note = time.monotonic()
            await asyncio.sleep(0.1)
        raise _err(
            f"the model worker did not open {self.socket_path} within {self.worker.startup_timeout_s:.0f} s",
            hint=f"see {self.log_path}, or raise [worker] startup_timeout_s",
        )

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                q = self._pending.get(str(ev.get("id")))
                if q is not None:
                    q.put_nowait(ev)
        except (ConnectionError, ValueError):
            pass
        finally:
            # The worker went away: every waiter gets an error instead of hanging.
            for q in self._pending.values():
                q.put_nowait({"event": "error", "message": "connection to the worker was lost"})
            if self._writer is not None:
                self._writer.close()
            self._writer = None

    async def _request(self, req: dict[str, Any]) -> asyncio.Queue[dict[str, Any]]:
        await self._ensure_connected()
        assert self._writer is not None
        rid = f"c{next(self._ids)}"
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending[rid] = q
        try:
            self._writer.write(json.dumps({"id": rid, **req}).encode() + b"\n")
            await self._writer.drain()
        except (ConnectionError, OSError) as e:
            self._pending.pop(rid, None)
            raise _err(f"cannot talk to the worker: {e}") from e
        q.rid = rid  # type: ignore[attr-defined]
        return q

    def _forget(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._pending.pop(getattr(q, "rid", ""), None)

    async def _call(self, req: dict[str, Any]) -> dict[str, Any]:
        q = await self._request(req)
        try:
            ev = await q.get()
        finally:
            self._forget(q)
        if ev.get("event") == "error":
            raise _err(ev.get("message", "worker error"))
        return ev

    # ---- Provider protocol -----------------------------------------------------------------
    async def open_session(self, params: SessionParams | None = None) -> WorkerSession:
        """Open a session in the worker (auto-starting it if needed)."""
        req: dict[str, Any] = {"op": "create_session"}
        if params is not None:
            req["params"] = _sampling(params)
        if self.worker.system_prefix:
            req["system_prefix"] = self.worker.system_prefix
        ev = await self._call(req)
        return WorkerSession(self, ev["session"])

    async def status(self) -> dict[str, Any]:
        """The worker's ``status`` report."""
        return await self._call({"op": "status"})

    async def aclose(self) -> None:
        """Close the connection (the worker keeps running)."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
        self._writer = None


def _spawn(cmd: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start the worker detached: it outlives this client and is shared by the next ones."""
    from fazai.store.files import open_private_log

    # 0600: the worker log carries prompts (goals, command output) like the session log does.
    with os.fdopen(open_private_log(log_path), "ab") as log:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=os.environ.copy(),
        )


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    # llama.cpp's own log lines start with a timestamp; our messages are what the operator needs.
    ours = [ln for ln in text if ln.startswith("fazai-worker") or "Error" in ln]
    return "\n".join((ours or text)[-lines:])
