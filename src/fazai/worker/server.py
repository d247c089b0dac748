"""The worker's socket server: ND-JSON requests in, ND-JSON events out, many sessions per model.

Requests (one JSON object per line, each with an ``id`` echoed in its events)::

    {"id": "1", "op": "create_session", "params": {"temperature": 0.2}, "system_prefix": "…"}
    {"id": "2", "op": "generate", "session": "s1", "messages": [{"role": "user", "content": "hi"}]}
    {"id": "3", "op": "abort", "session": "s1"}
    {"id": "4", "op": "close_session", "session": "s1"}
    {"id": "5", "op": "status"}

Events: ``token`` (text), ``stop`` (reason, text, usage), ``error`` (message), and ``ok`` / ``status``
answering the control requests. See docs/worker.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fazai.worker.engine import Engine, EngineError
from fazai.worker.slots import PREFIX_OWNER, SlotPool

log = logging.getLogger("fazai.worker")

MAX_LINE = 32 * 1024 * 1024
SAMPLING_KEYS = {"temperature", "top_p", "repeat_penalty", "max_tokens", "stop", "seed"}
ROLES = {"system", "user", "assistant"}
PROTOCOL_HINT = "see docs/worker.md for the request format"


class BadRequest(ValueError):
    """A request the worker cannot act on; the message says what to fix."""


@dataclass(slots=True, eq=False)
class Generation:
    """One running or queued ``generate``."""

    req_id: Any
    conn: Connection
    abort: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = None
    started: bool = False  # holds a slot


@dataclass(slots=True)
class Session:
    """A conversation with its own KV cache (live in a slot, or saved to a file)."""

    id: str
    sampling: dict[str, Any]
    saved: bool = False  # its state lives in <state_dir>/<id>.bin
    current: Generation | None = None


@dataclass(slots=True)
class Stats:
    """Counters reported by ``status``."""

    generations: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    aborted: int = 0
    saves: int = 0
    restores: int = 0
    last_prompt_tps: float = 0.0
    last_gen_tps: float = 0.0


class Connection:
    """One client socket; writes whole lines so events of multiplexed requests never interleave."""

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.closed = False
        self.generations: set[Generation] = set()

    async def send(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.writer.write(json.dumps(event, ensure_ascii=False).encode() + b"\n")
            await self.writer.drain()
        except (ConnectionError, RuntimeError, OSError):
            self.closed = True


def _check_sampling(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object")
    unknown = set(raw) - SAMPLING_KEYS
    if unknown:
        raise BadRequest(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(SAMPLING_KEYS)}")
    out = dict(raw)
    if "stop" in out:
        stop = out["stop"]
        if isinstance(stop, str):
            out["stop"] = [stop]
        elif not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
            raise BadRequest(f"{where}.stop must be a string or a list of strings")
    for k in ("temperature", "top_p", "repeat_penalty"):
        if k in out and not isinstance(out[k], int | float):
            raise BadRequest(f"{where}.{k} must be a number")
    if "max_tokens" in out and (not isinstance(out["max_tokens"], int) or out["max_tokens"] < 1):
        raise BadRequest(f"{where}.max_tokens must be a positive integer")
    return out


def _check_messages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("messages must be a non-empty list of {role, content}")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise BadRequest(f"messages[{i}] must be {{role: system|user|assistant, content: string}}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


class WorkerServer:
    """Serves one :class:`Engine` over a Unix socket."""

    def __init__(
        self, engine: Engine, socket_path: Path, *, model_name: str, system_prefix: str | None = None
    ):
        self.engine = engine
        self.socket_path = socket_path
        self.model_name = model_name
        self.pool = SlotPool(engine.config.slots)
        self.sessions: dict[str, Session] = {}
        self.stats = Stats()
        self.system_prefix: str | None = None
        self._initial_prefix = system_prefix
        self._prefix_ready = False
        self._prefix_lock = asyncio.Lock()
        self._ids = itertools.count(1)
        # One thread per slot plus one for saves/restores and prefix warming.
        self._executor = ThreadPoolExecutor(max_workers=engine.config.slots + 2, thread_name_prefix="llm")
        self._server: asyncio.AbstractServer | None = None
        self.started_at = time.time()

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind the socket (mode 0660) and warm the shared prefix if one is configured."""
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        old_umask = os.umask(0o117)  # the socket is born 0660: no window where others can connect
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.socket_path), limit=MAX_LINE
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, 0o660)
        if self._initial_prefix:
            await self.set_prefix(self._initial_prefix)

    async def serve_forever(self) -> None:
        """Run until cancelled."""
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        """Abort everything, close the socket, stop the threads."""
        for s in self.sessions.values():
            if s.current:
                s.current.abort.set()
        if self._server:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def _blocking(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ---- shared prefix ---------------------------------------------------------------------
    async def set_prefix(self, text: str) -> None:
        """Evaluate the shared system prefix once and keep its KV state for new sessions."""
        async with self._prefix_lock:
            if self._prefix_ready:
                return
            self.system_prefix = text
            slot = await self.pool.acquire(PREFIX_OWNER)
            try:
                await self._blocking(self._save_owner, slot)
                is_chat, body = self.engine.request_body(
                    [{"role": "system", "content": text}], {"max_tokens": 1, "temperature": 0}, slot
                )
                body["stream"] = False
                body.pop("return_progress", None)
                await self._blocking(self.engine.run, is_chat, body, None)
                await self._blocking(self.engine.save_slot, slot, "prefix.bin")
                self.pool.slots[slot].owner = PREFIX_OWNER
                self._prefix_ready = True
            finally:
                self.pool.release(slot)

    # ---- connection handling ---------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(writer)
        try:
            while not conn.closed:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await conn.send(
                        {"id": None, "event": "error", "message": f"line longer than {MAX_LINE} bytes"}
                    )
                    break
                except ConnectionError:
                    break
                if not line:
                    break
                if line.strip():
                    await self._dispatch(conn, line)
        finally:
            # A client that goes away takes its generations with it; the worker stays healthy.
            conn.closed = True
            for gen in list(conn.generations):
                self._abort_generation(gen)
            with contextlib.suppress(Exception):
                writer.close()

    async def _dispatch(self, conn: Connection, line: bytes) -> None:
        req_id: Any = None
        try:
            try:
                req = json.loads(line)
            except (ValueError, UnicodeDecodeError) as e:
                raise BadRequest(
                    f"not valid JSON ({e}); send one JSON object per line — {PROTOCOL_HINT}"
                ) from e
            if not isinstance(req, dict):
                raise BadRequest(f"a request must be a JSON object — {PROTOCOL_HINT}")
            req_id = req.get("id")
            op = req.get("op")
            handler = {
                "create_session": self._op_create,
                "generate": self._op_generate,
                "abort": self._op_abort,
                "close_session": self._op_close,
                "status": self._op_status,
            }.get(op)  # type: ignore[arg-type]
            if handler is None:
                raise BadRequest(
                    f"unknown op {op!r}; use create_session, generate, abort, close_session or status"
                )
            await handler(conn, req_id, req)
        except BadRequest as e:
            await conn.send({"id": req_id, "event": "error", "message": str(e)})
        except EngineError as e:
            await conn.send({"id": req_id, "event": "error", "message": f"model runtime error: {e}"})
        except Exception as e:  # a bug must cost one request, never the worker
            log.exception("request failed")
            await conn.send(
                {
                    "id": req_id,
                    "event": "error",
                    "message": f"internal worker error: {e!r} — see the worker log",
                }
            )

    def _session(self, req: dict[str, Any]) -> Session:
        sid = req.get("session")
        if not isinstance(sid, str) or sid not in self.sessions:
            raise BadRequest(f"unknown session {sid!r}; open one with create_session first")
        return self.sessions[sid]

    # ---- operations ------------------------------------------------------------------------
    async def _op_create(self, conn: Connection, req_id: Any, req: dict[str, Any]) -> None:
        sampling = _check_sampling(req.get("params"), "params")
        prefix = req.get("system_prefix")
        if prefix is not None and not isinstance(prefix, str):
            raise BadRequest("system_prefix must be a string")
        if prefix and not self._prefix_ready:
            await self.set_prefix(prefix)  # the first client to name a prefix sets it for everyone
        sid = f"s{next(self._ids)}"
        self.sessions[sid] = Session(sid, sampling)
        await conn.send({"id": req_id, "event": "ok", "session": sid, "system_prefix": self.system_prefix})

    async def _op_generate(self, conn: Connection, req_id: Any, req: dict[str, Any]) -> None:
        sess = self._session(req)
        messages = _check_messages(req.get("messages"))
        sampling = {**sess.sampling, **_check_sampling(req.get("params"), "params")}
        grammar, schema = req.get("grammar"), req.get("json_schema")
        if grammar is not None and not isinstance(grammar, str):
            raise BadRequest("grammar must be a GBNF string")
        if schema is not None and not isinstance(schema, dict):
            raise BadRequest("json_schema must be a JSON object")
        if grammar and schema:
            raise BadRequest("give either grammar or json_schema, not both")
        if sess.current is not None:
            raise BadRequest(f"session {sess.id} is already generating; abort it or wait for its stop event")
        if self.system_prefix and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.system_prefix}, *messages]
        gen = Generation(req_id, conn)
        sess.current = gen
        conn.generations.add(gen)
        gen.task = asyncio.create_task(self._generate(sess, gen, messages, sampling, grammar, schema))

    async def _op_abort(self, conn: Connection, req_id: Any, req: dict[str, Any]) -> None:
        sess = self._session(req)
        was = sess.current is not None
        if sess.current:
            self._abort_generation(sess.current)
        await conn.send({"id": req_id, "event": "ok", "session": sess.id, "aborted": was})

    async def _op_close(self, conn: Connection, req_id: Any, req: dict[str, Any]) -> None:
        sess = self._session(req)
        if sess.current:
            self._abort_generation(sess.current)
        del self.sessions[sess.id]
        self.pool.forget(sess.id)
        with contextlib.suppress(FileNotFoundError):
            (self.engine.config.state_dir / f"{sess.id}.bin").unlink()
        await conn.send({"id": req_id, "event": "ok", "session": sess.id, "closed": True})

    async def _op_status(self, conn: Connection, req_id: Any, req: dict[str, Any]) -> None:
        await conn.send({"id": req_id, "event": "status", **self.status()})

    def status(self) -> dict[str, Any]:
        """What ``status`` reports."""
        st = self.stats
        cfg = self.engine.config
        return {
            "model": self.model_name,
            "model_path": str(cfg.model_path),
            "chat_template": self.engine.chat_template,
            "sessions": len(self.sessions),
            "slots": cfg.slots,
            "slots_busy": self.pool.busy,
            "queued": self.pool.queued,
            "ctx_size": cfg.ctx_size,
            "system_prefix": self._prefix_ready,
            "generations": st.generations,
            "aborted": st.aborted,
            "cache_hits": st.cache_hits,
            "prompt_tokens": st.prompt_tokens,
            "cached_tokens": st.cached_tokens,
            "generated_tokens": st.generated_tokens,
            "state_saves": st.saves,
            "state_restores": st.restores,
            "prompt_tokens_per_s": round(st.last_prompt_tps, 1),
            "tokens_per_s": round(st.last_gen_tps, 1),
            "load_s": round(self.engine.load_s, 2),
            "uptime_s": round(time.time() - self.started_at, 1),
            "pid": os.getpid(),
        }

    def _abort_generation(self, gen: Generation) -> None:
        gen.abort.set()
        if not gen.started and gen.task is not None:
            gen.task.cancel()  # still queued for a slot: stop waiting at once

    # ---- generation ------------------------------------------------------------------------
    def _save_owner(self, slot: int) -> None:
        """Save the state of the session living in ``slot`` before someone else uses it."""
        state = self.pool.slots[slot]
        prev = self.sessions.get(state.owner) if state.owner not in (None, PREFIX_OWNER) else None
        if prev is not None:
            self.engine.save_slot(slot, f"{prev.id}.bin")
            prev.saved = True
            self.stats.saves += 1
        state.owner = None

    def _swap_in(self, slot: int, sess: Session) -> None:
        """Make ``slot`` hold ``sess``'s state: save the previous owner, restore this session."""
        state = self.pool.slots[slot]
        if state.owner == sess.id:
            return
        was_prefix = state.owner == PREFIX_OWNER
        self._save_owner(slot)
        if sess.saved:
            self.engine.restore_slot(slot, f"{sess.id}.bin")
            self.stats.restores += 1
        elif self._prefix_ready and not was_prefix:
            self.engine.restore_slot(slot, "prefix.bin")
            self.stats.restores += 1
        state.owner = sess.id

    async def _generate(
        self,
        sess: Session,
        gen: Generation,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        grammar: str | None,
        schema: dict[str, Any] | None,
    ) -> None:
        t0 = time.perf_counter()
        pieces: list[str] = []
        first_token: float | None = None
        reason = "aborted"
        timings: dict[str, Any] = {}
        slot: int | None = None
        try:
            try:
                slot = await self.pool.acquire(sess.id)
            except asyncio.CancelledError:
                slot = None
                return  # aborted while queued; the finally block reports it
            gen.started = True
            if gen.abort.is_set():
                return
            await self._blocking(self._swap_in, slot, sess)
            is_chat, body = self.engine.request_body(
                messages, sampling, slot, grammar=grammar, json_schema=schema
            )
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

            def on_chunk(chunk: dict[str, Any]) -> bool:
                if gen.abort.is_set():
                    return True
                loop.call_soon_threadsafe(queue.put_nowait, ("chunk", chunk))
                return False

            def work() -> None:
                try:
                    res: Any = self.engine.run(is_chat, body, on_chunk)
                except EngineError as e:
                    res = {"error": {"message": str(e)}}
                loop.call_soon_threadsafe(queue.put_nowait, ("done", res))

            fut = loop.run_in_executor(self._executor, work)
            error: str | None = None
            while True:
                kind, item = await queue.get()
                if kind == "done":
                    if isinstance(item, dict) and "error" in item:
                        error = _error_text(item)
                    break
                if "error" in item:
                    error = _error_text(item)
                    continue
                choice = (item.get("choices") or [{}])[0]
                text = (choice.get("delta") or {}).get("content") if is_chat else choice.get("text")
                if text:
                    if first_token is None:
                        first_token = time.perf_counter()
                    pieces.append(text)
                    await gen.conn.send({"id": gen.req_id, "event": "token", "text": text})
                if choice.get("finish_reason"):
                    reason = "length" if choice["finish_reason"] == "length" else "stop"
                if "timings" in item:
                    timings = item["timings"]
            await fut
            if error is not None and not gen.abort.is_set():
                reason = "error"
                await gen.conn.send({"id": gen.req_id, "event": "error", "message": error})
            if gen.abort.is_set():
                reason = "aborted"
        except asyncio.CancelledError:
            reason = "aborted"
        finally:
            if slot is not None:
                self.pool.release(slot)
            if sess.current is gen:
                sess.current = None
            gen.conn.generations.discard(gen)
            if reason != "error":
                usage = self._account(timings, len(pieces), t0, first_token, reason)
                await gen.conn.send(
                    {
                        "id": gen.req_id,
                        "event": "stop",
                        "model": self.model_name,
                        "reason": reason,
                        "text": "".join(pieces),
                        "usage": usage,
                    }
                )

    def _account(
        self, timings: dict[str, Any], n_pieces: int, t0: float, first: float | None, reason: str
    ) -> dict[str, Any]:
        st = self.stats
        cached = int(timings.get("cache_n", 0))
        prompt = cached + int(timings.get("prompt_n", 0))
        generated = int(timings.get("predicted_n", n_pieces))
        st.generations += 1
        st.aborted += reason == "aborted"
        st.cache_hits += cached > 0
        st.prompt_tokens += prompt
        st.cached_tokens += cached
        st.generated_tokens += generated
        if timings.get("prompt_per_second"):
            st.last_prompt_tps = float(timings["prompt_per_second"])
        gen_tps = float(timings.get("predicted_per_second") or 0.0)
        if gen_tps:
            st.last_gen_tps = gen_tps
        now = time.perf_counter()
        return {
            "prompt_tokens": prompt,
            "cached_tokens": cached,
            "generated_tokens": generated,
            "ttft_ms": round(((first or now) - t0) * 1000, 1),
            "tokens_per_s": round(gen_tps, 1),
            "prompt_ms": round(float(timings.get("prompt_ms", 0.0)), 1),
            "total_ms": round((now - t0) * 1000, 1),
        }


def _error_text(item: dict[str, Any]) -> str:
    err = item.get("error")
    msg = err.get("message") if isinstance(err, dict) else str(err)
    if msg and "context size" in msg:
        msg += " — start a new session, shorten the conversation, or raise [worker] ctx_size"
    elif msg and "grammar" in msg:
        msg += " — check the GBNF grammar (llama.cpp syntax)"
    return msg or "unknown runtime error"
