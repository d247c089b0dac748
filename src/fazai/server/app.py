"""The ``fazaid`` HTTP API (ARCHITECTURE §4): sessions, SSE streams, replies, abort, metrics."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import structlog
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from fazai import __version__
from fazai.bus import EventBus
from fazai.config import Settings
from fazai.server import sse, sse_remote
from fazai.server.auth import token_matches
from fazai.sessions.manager import LoopFn, RunnerError, RunOptions, SessionManager
from fazai.sessions.token import ensure_token
from fazai.store import Store
from fazai.store.retry import retrying

log = structlog.get_logger("fazai.daemon")


class CreateSession(BaseModel):
    goal: str = Field(min_length=1)
    mode: str = "agent"


class Generate(BaseModel):
    """New session (no ``session``), continue one (``session`` + ``goal``) or resume it (``session``)."""

    session: str | None = None
    goal: str | None = None
    yes: bool = False
    max_iterations: int | None = Field(default=None, ge=1, le=1000)
    model: str | None = None
    mode: Literal["agent", "ask"] = "agent"


class Abort(BaseModel):
    session: str


class Reply(BaseModel):
    session: str
    action: int | str
    approved: bool | None = None
    answer: str | None = None


def create_app(
    settings: Settings,
    *,
    loop_fn: LoopFn | None = None,
    manager_factory: Callable[[Settings, Store], SessionManager] | None = None,
) -> FastAPI:
    """The FastAPI app; the store opens (and migrates) and interrupted sessions are marked at start.

    An unreachable database is waited for (with backoff, saying so); a schema that is behind or
    ahead stops the start (the message says what to run). With ``[bus] url`` the replica connects to
    NATS in the background and publishes every committed event there.
    """
    token = ensure_token(settings.daemon_token_file) if settings.daemon.require_token else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrate = None if settings.daemon.migrate is None else settings.daemon.migrate == "auto"
        store = await retrying(
            lambda: Store.open(settings.database_url, migrate=migrate), what="open store", max_s=2.0
        )
        bus = None
        if settings.bus.url:
            bus = EventBus(settings.bus, settings.daemon.replica_id or socket.gethostname())
        manager = (
            manager_factory(settings, store)
            if manager_factory
            else SessionManager(settings, store, loop_fn=loop_fn, bus=bus)
        )
        manager.bus = bus
        if bus is not None:
            bus.serve_control(manager.handle_control)
            bus.start()
        await retrying(lambda: manager.start(recover=True), what="recover sessions", max_s=5.0)
        app.state.manager = manager
        log.info(
            "daemon_ready",
            version=__version__,
            store=store.engine.url.render_as_string(hide_password=True),
            replica=manager.replica,
            bus=settings.bus.url or None,
        )
        try:
            yield
        finally:
            await manager.stop()
            if bus is not None:
                await bus.stop()
            await store.close()

    app = FastAPI(title="fazaid", version=__version__, lifespan=lifespan)

    async def auth(authorization: str | None = Header(default=None)) -> None:
        if token is not None and not token_matches(authorization, token):
            raise HTTPException(
                401,
                "missing or wrong bearer token: send `Authorization: Bearer $(cat "
                f"{settings.daemon_token_file})`",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def mgr(request: Request) -> SessionManager:
        return request.app.state.manager

    @app.exception_handler(RunnerError)
    async def _runner_error(_req: Request, exc: RunnerError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        m = mgr(request)
        out: dict[str, Any] = {
            "ok": True,
            "service": "fazaid",
            "version": __version__,
            "running": len(m.runs),
        }
        out["replica"] = m.replica
        if m.bus is not None:
            out["bus"] = {
                "connected": m.bus.connected,
                "pending": m.bus.pending,
                "published": m.bus.published,
            }
        if m.shared_store:
            out["followed"] = dict(m.followed)
        return out

    @app.get("/metrics", dependencies=[Depends(auth)])
    async def metrics(request: Request) -> Response:
        return Response(mgr(request).metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/agent/sessions", status_code=201, dependencies=[Depends(auth)])
    async def create_session(body: CreateSession, request: Request) -> dict[str, Any]:
        rec = await mgr(request).create(body.goal, mode=body.mode)
        return rec.to_dict()

    @app.get("/agent/sessions", dependencies=[Depends(auth)])
    async def list_sessions(
        request: Request, limit: int = Query(50, ge=1, le=1000), status: str | None = None
    ) -> list[dict[str, Any]]:
        return [r.to_dict() for r in await mgr(request).store.list_sessions(limit=limit, status=status)]

    @app.get("/agent/sessions/{session_id}", dependencies=[Depends(auth)])
    async def get_session(session_id: str, request: Request) -> dict[str, Any]:
        m = mgr(request)
        rec = await m.store.get_session(session_id)
        if rec is None:
            raise HTTPException(404, f"no session {session_id}")
        out = rec.to_dict()
        run = m.runs.get(session_id)
        out["live"] = run is not None
        out["waiting_for"] = [{"action": k, "kind": p.kind} for k, p in run.pending.items()] if run else []
        out["last_seq"] = await m.store.last_seq(session_id)
        return out

    @app.get("/agent/sessions/{session_id}/events", dependencies=[Depends(auth)])
    async def session_events(
        session_id: str,
        request: Request,
        after: int | None = Query(None, ge=0, description="replay events with seq > after"),
        follow: bool = True,
        last_event_id: str | None = Header(default=None),
    ) -> EventSourceResponse:
        m = mgr(request)
        rec = await m.store.get_session(session_id)
        if rec is None:
            raise HTTPException(404, f"no session {session_id}")
        start = after if after is not None else _parse_last_id(last_event_id)
        if follow and m.shared_store and rec.status == "running" and session_id not in m.runs:
            # Another replica runs it: follow it through the shared store and the bus.
            return _sse(settings, sse_remote.follow_remote(m, session_id, start))
        return _sse(settings, sse.follow(m, session_id, start, follow_live=follow))

    @app.post("/agent/generate", dependencies=[Depends(auth)])
    async def generate(body: Generate, request: Request) -> EventSourceResponse:
        m = mgr(request)
        opts = RunOptions(yes=body.yes, max_iterations=body.max_iterations, model=body.model, mode=body.mode)
        sid = body.session
        if sid is None:
            if not body.goal or not body.goal.strip():
                raise RunnerError("the goal is empty: say what FazAI should do")
            sid = (await m.create(body.goal, mode=body.mode, model=body.model)).id
        elif await m.store.get_session(sid) is None:
            raise RunnerError(f"no session {sid} (list them with `fazai sessions`)", 404)
        after = await m.store.last_seq(sid)
        # Subscribe before the run starts, so its first event is already followed.
        sub = m.hub.subscribe(sid)
        try:
            await m.start_run(session_id=sid, goal=body.goal, options=opts)
        except Exception:
            m.hub.unsubscribe(sub)
            raise
        resp = _sse(settings, sse.follow(m, sid, after, sub=sub))
        resp.headers["X-Session-Id"] = sid
        return resp

    @app.post("/agent/abort", dependencies=[Depends(auth)])
    async def abort(body: Abort, request: Request) -> dict[str, Any]:
        m = mgr(request)
        if await m.store.get_session(body.session) is None:
            raise HTTPException(404, f"no session {body.session}")
        remote = await m.forward(body.session, {"op": "abort"})
        if remote is not None:
            return {"session": body.session, **remote}
        return {"session": body.session, "aborted": await m.abort(body.session)}

    @app.post("/agent/reply", dependencies=[Depends(auth)])
    async def reply(body: Reply, request: Request) -> dict[str, Any]:
        action: int | str = body.action
        if isinstance(action, str) and action.isdigit():
            action = int(action)
        m = mgr(request)
        fwd = {"op": "reply", "action": action, "approved": body.approved, "answer": body.answer}
        remote = await m.forward(body.session, fwd)
        if remote is not None:
            return {"session": body.session, "action": action, **remote}
        m.reply(body.session, action, approved=body.approved, answer=body.answer)
        return {"session": body.session, "action": action, "accepted": True}

    return app


def _parse_last_id(value: str | None) -> int:
    try:
        return max(0, int(value)) if value else 0
    except ValueError:
        return 0


def _sse(settings: Settings, gen: AsyncIterator[Any]) -> EventSourceResponse:
    return EventSourceResponse(
        gen,
        send_timeout=settings.daemon.sse_send_timeout_s,
        ping=15,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
