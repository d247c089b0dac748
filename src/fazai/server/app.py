"""The ``fazaid`` HTTP API (ARCHITECTURE §4): sessions, SSE streams, replies, abort, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import structlog
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from sse_starlette import EventSourceResponse

from fazai import __version__
from fazai.config import Settings
from fazai.server import automation_routes, sse
from fazai.server.auth import token_matches
from fazai.server.nodes import nodes_router
from fazai.sessions.automation import Automation
from fazai.sessions.manager import LoopFn, RunnerError, RunOptions, SessionManager
from fazai.sessions.playbook_loop import PlaybookLoop, build_env
from fazai.sessions.token import ensure_token
from fazai.store import Store, StoreError
from fazai.store.store import reason as _reason

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
    node: str | None = Field(default=None, description="run on this inventory node (fazai nodes list)")


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
    """The FastAPI app; the store opens (and migrates) and interrupted sessions are marked at start."""
    token = ensure_token(settings.daemon_token_file) if settings.daemon.require_token else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await Store.open(settings.database_url, reserve_bytes=settings.disk_reserve_bytes)
        # Playbook runs are sessions of the same runner: its loop function sends them to the engine.
        pb_loop = PlaybookLoop(settings, build_env(settings), inner=loop_fn)
        manager = (
            manager_factory(settings, store)
            if manager_factory
            else SessionManager(settings, store, loop_fn=pb_loop)
        )
        await manager.start(recover=True)
        automation = Automation(settings, manager, pb_loop)
        await automation.start()
        app.state.manager = manager
        app.state.fleet = None
        if settings.fleet.enabled:
            from fazai.fleet.gateway import start_fleet

            app.state.fleet = await start_fleet(settings, store.engine)
        app.state.automation = automation
        log.info(
            "daemon_ready", version=__version__, store=store.engine.url.render_as_string(hide_password=True)
        )
        try:
            yield
        finally:
            if app.state.fleet is not None:
                await app.state.fleet.stop()
            await automation.stop()
            await manager.stop()
            await pb_loop.aclose()
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

    app.include_router(nodes_router(auth))

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

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        m = mgr(request)
        return {"ok": True, "service": "fazaid", "version": __version__, "running": len(m.runs)}

    @app.get("/metrics", dependencies=[Depends(auth)])
    async def metrics(request: Request) -> Response:
        body = mgr(request).metrics.render() + request.app.state.automation.collector.render()
        return Response(body, media_type="text/plain; version=0.0.4")

    app.include_router(automation_routes.router(auth))

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
        if await m.store.get_session(session_id) is None:
            raise HTTPException(404, f"no session {session_id}")
        start = after if after is not None else _parse_last_id(last_event_id)
        return _sse(settings, sse.follow(m, session_id, start, follow_live=follow))

    @app.post("/agent/generate", dependencies=[Depends(auth)])
    async def generate(body: Generate, request: Request) -> EventSourceResponse:
        m = mgr(request)
        opts = RunOptions(
            yes=body.yes, max_iterations=body.max_iterations, model=body.model, mode=body.mode, node=body.node
        )
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
        mgr(request).reply(body.session, action, approved=body.approved, answer=body.answer)
        return {"session": body.session, "action": action, "accepted": True}

    from fazai.server import fleet_routes

    app.include_router(fleet_routes.router(), dependencies=[Depends(auth)])
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
