"""The ``fazaid`` HTTP API (ARCHITECTURE §4): sessions, SSE streams, replies, abort, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import structlog
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from sse_starlette import EventSourceResponse

from fazai import __version__
from fazai.config import Settings
from fazai.server import sse
from fazai.server.auth import token_matches
from fazai.server.limits import BodyLimit
from fazai.sessions.manager import LoopFn, RunnerError, RunOptions, SessionManager
from fazai.sessions.token import ensure_token
from fazai.store import Store, StoreError
from fazai.store.store import reason as _reason

log = structlog.get_logger("fazai.daemon")


class CreateSession(BaseModel):
    goal: str = Field(min_length=1)
    mode: str = "agent"


class Generate(BaseModel):
    """New session (no ``session``), continue one (``session`` + ``goal``) or resume it (``session``)."""

    session: str | None = Field(default=None, max_length=64)
    goal: str | None = None
    yes: bool = False
    max_iterations: int | None = Field(default=None, ge=1, le=1000)
    model: str | None = None
    mode: Literal["agent", "ask"] = "agent"


class Abort(BaseModel):
    session: str


# Event sequence numbers and action ids are SQLite integers (64-bit); larger values are bad input.
MAX_SEQ = 2**63 - 1


class Reply(BaseModel):
    session: str = Field(max_length=64)
    action: Annotated[int, Field(ge=0, le=MAX_SEQ)] | Annotated[str, Field(max_length=32)]
    approved: bool | None = None
    answer: str | None = None


def create_app(
    settings: Settings,
    *,
    loop_fn: LoopFn | None = None,
    manager_factory: Callable[[Settings, Store], SessionManager] | None = None,
) -> FastAPI:
    """The FastAPI app; the store opens (and migrates) and interrupted sessions are marked at start."""
    token = ensure_token(settings.daemon_token_file) if settings.daemon.require_token else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await Store.open(settings.database_url, reserve_bytes=settings.disk_reserve_bytes)
        manager = (
            manager_factory(settings, store)
            if manager_factory
            else SessionManager(settings, store, loop_fn=loop_fn)
        )
        await manager.start(recover=True)
        app.state.manager = manager
        log.info(
            "daemon_ready", version=__version__, store=store.engine.url.render_as_string(hide_password=True)
        )
        try:
            yield
        finally:
            await manager.stop()
            await store.close()

    # No open /docs or /redoc; the schema is served below, behind the token like every other route.
    app = FastAPI(
        title="fazaid",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.daemon.max_body_bytes)

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

    @app.exception_handler(StoreError)
    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(OSError)
    async def _store_error(_req: Request, exc: Exception) -> JSONResponse:
        # The store (or its disk) failed: a 503 that says so, never a bare 500.
        why = _reason(exc)
        log.error("store_unavailable", error=why)
        return JSONResponse({"detail": f"the session store cannot be used right now: {why}"}, status_code=503)

    @app.get("/openapi.json", dependencies=[Depends(auth)], include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        m = mgr(request)
        return {"ok": True, "service": "fazaid", "version": __version__, "running": len(m.runs)}

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
        after: int | None = Query(None, ge=0, le=MAX_SEQ, description="replay events with seq > after"),
        follow: bool = True,
        last_event_id: str | None = Header(default=None),
    ) -> EventSourceResponse:
        m = mgr(request)
        if await m.store.get_session(session_id) is None:
            raise HTTPException(404, f"no session {session_id}")
        start = after if after is not None else _parse_last_id(last_event_id)
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
        return {"session": body.session, "aborted": await m.abort(body.session)}

    @app.post("/agent/reply", dependencies=[Depends(auth)])
    async def reply(body: Reply, request: Request) -> dict[str, Any]:
        action: int | str = body.action
        if isinstance(action, str) and action.isdigit():
            action = int(action)
        if isinstance(action, int) and action > MAX_SEQ:
            raise HTTPException(400, f"action id {action} is out of range (0..{MAX_SEQ})")
        mgr(request).reply(body.session, action, approved=body.approved, answer=body.answer)
        return {"session": body.session, "action": action, "accepted": True}

    return app


def _parse_last_id(value: str | None) -> int:
    """``Last-Event-ID``: a seq (0 when absent or not a number); 400 past the 64-bit range."""
    if not value or len(value) > 32:
        if value and value.strip().isdigit():
            raise HTTPException(400, f"Last-Event-ID is out of range (0..{MAX_SEQ})")
        return 0
    try:
        n = max(0, int(value))
    except ValueError:
        return 0
    if n > MAX_SEQ:
        raise HTTPException(400, f"Last-Event-ID {n} is out of range (0..{MAX_SEQ})")
    return n


def _sse(settings: Settings, gen: AsyncIterator[Any]) -> EventSourceResponse:
    return EventSourceResponse(
        gen,
        send_timeout=settings.daemon.sse_send_timeout_s,
        ping=15,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
