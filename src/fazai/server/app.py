"""The ``fazaid`` HTTP API (ARCHITECTURE §4): sessions, SSE streams, replies, abort, metrics."""

from __future__ import annotations

import socket
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
from fazai.audit import AuditLog
from fazai.auth import AuthService, CredentialError, Scope
from fazai.bus import EventBus
from fazai.config import Settings
from fazai.server import automation_routes, sse, sse_remote
from fazai.server.limits import BodyLimit
from fazai.server.nodes import nodes_router
from fazai.sessions.automation import Automation
from fazai.sessions.manager import LoopFn, RunnerError, RunOptions, SessionManager
from fazai.sessions.playbook_loop import PlaybookLoop, build_env
from fazai.sessions.token import ensure_token
from fazai.store import Store, StoreError
from fazai.store.retry import retrying
from fazai.store.store import reason as _reason
from fazai.web.access import Access, Caller, client_addr, password_login, reply_as, visible_sessions

log = structlog.get_logger("fazai.daemon")


SITE_FIELD = Field(default="default/default", description="ORG/SITE the session belongs to")


class CreateSession(BaseModel):
    goal: str = Field(min_length=1)
    mode: str = "agent"
    site: str = SITE_FIELD


class Generate(BaseModel):
    """New session (no ``session``), continue one (``session`` + ``goal``) or resume it (``session``)."""

    session: str | None = Field(default=None, max_length=64)
    goal: str | None = None
    yes: bool = False
    max_iterations: int | None = Field(default=None, ge=1, le=1000)
    model: str | None = None
    mode: Literal["agent", "ask"] = "agent"
    node: str | None = Field(default=None, description="run on this inventory node (fazai nodes list)")
    site: str = SITE_FIELD


class Login(BaseModel):
    name: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class Refresh(BaseModel):
    refresh: str = Field(max_length=500)


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
            lambda: Store.open(
                settings.database_url, reserve_bytes=settings.disk_reserve_bytes, migrate=migrate
            ),
            what="open store",
            max_s=2.0,
        )
        bus = None
        if settings.bus.url:
            bus = EventBus(settings.bus, settings.daemon.replica_id or socket.gethostname())
            bus.start()
        # Playbook runs are sessions of the same runner: its loop function sends them to the engine.
        pb_loop = PlaybookLoop(settings, build_env(settings), inner=loop_fn)
        manager = (
            manager_factory(settings, store)
            if manager_factory
            else SessionManager(settings, store, loop_fn=pb_loop, bus=bus)
        )
        manager.bus = bus
        if bus is not None:
            bus.serve_control(manager.handle_control)
            bus.start()
        await retrying(lambda: manager.start(recover=True), what="recover sessions", max_s=5.0)
        automation = Automation(settings, manager, pb_loop)
        await automation.start()
        app.state.manager = manager
        app.state.fleet = None
        if settings.fleet.enabled:
            from fazai.fleet.gateway import start_fleet

            # Replicas on one PostgreSQL with a bus relay actions to the replica holding each node.
            relay_bus = bus if bus is not None and manager.shared_store else None
            app.state.fleet = await start_fleet(
                settings, store.engine, bus=relay_bus, replica=manager.replica
            )
            # `--node NAME` / `--nodes SELECTOR` reach enrolled agents through the hub.
            from fazai.targets.agent import AgentTarget

            hub = app.state.fleet.hub
            manager.nodes.transports["agent"] = lambda rec: AgentTarget(hub, rec.name)
            manager.nodes.live["agent"] = hub.is_connected
            hub.on_telemetry = automation.record_agent_metrics  # agents' samples: metrics + playbooks
            hub.on_node_state = automation.node_state  # connected: up; gone past down_after_s: down
        app.state.automation = automation
        state_dir = settings.paths.state_dir
        app.state.access = Access(
            AuthService(store.engine, state_dir, bootstrap_token=token),
            AuditLog(store.engine, state_dir),
            open_access=token is None,
            state_dir=state_dir,
        )
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
            if app.state.fleet is not None:
                await app.state.fleet.stop()
            await automation.stop()
            await manager.stop()
            await pb_loop.aclose()
            if bus is not None:
                await bus.stop()
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

    async def caller(request: Request) -> Caller:
        return await access(request).caller(request)

    def access(request: Request) -> Access:
        return request.app.state.access

    async def site_of(request: Request, session_id: str) -> Scope:
        return await access(request).auth.scopes.get(session_id)

    def mgr(request: Request) -> SessionManager:
        return request.app.state.manager

    def requires(action: str) -> Callable[..., Any]:
        """A route dependency: the caller must be allowed ``action`` (one policy, fazai.auth)."""

        async def check(request: Request, who: Caller = Depends(caller)) -> None:
            await access(request).require(who, action)

        return check

    app.include_router(nodes_router(requires("fleet.manage")))

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

    @app.get("/openapi.json", dependencies=[Depends(requires("metrics.read"))], include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

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

    @app.get("/metrics")
    async def metrics(request: Request, who: Caller = Depends(caller)) -> Response:
        await access(request).require(who, "metrics.read")
        body = mgr(request).metrics.render() + request.app.state.automation.collector.render()
        return Response(body, media_type="text/plain; version=0.0.4")

    app.include_router(automation_routes.router(requires("automation.manage")))

    # -- sign-in (users of `fazai users`) ---------------------------------------------------------

    @app.post("/auth/login")
    async def login(body: Login, request: Request) -> dict[str, Any]:
        pair = await password_login(access(request), body.name, body.password, client_addr(request))
        return {
            "access_token": pair.access,
            "refresh_token": pair.refresh,
            "token_type": "bearer",
            "expires_in": pair.expires_in,
        }

    @app.post("/auth/refresh")
    async def refresh(body: Refresh, request: Request) -> dict[str, Any]:
        try:
            pair = await access(request).auth.refresh(body.refresh)
        except CredentialError as e:
            raise HTTPException(401, str(e)) from e
        return {
            "access_token": pair.access,
            "refresh_token": pair.refresh,
            "token_type": "bearer",
            "expires_in": pair.expires_in,
        }

    @app.get("/auth/me")
    async def me(who: Caller = Depends(caller)) -> dict[str, Any]:
        p = who.principal
        return {"name": p.name, "kind": p.kind, "grants": [str(g) for g in p.grants]}

    # -- sessions ----------------------------------------------------------------------------------

    @app.post("/agent/sessions", status_code=201)
    async def create_session(
        body: CreateSession, request: Request, who: Caller = Depends(caller)
    ) -> dict[str, Any]:
        site = parse_site(body.site)
        await access(request).require(who, "session.run", site)
        rec = await mgr(request).create(body.goal, mode=body.mode)
        await access(request).auth.scopes.set(rec.id, site)
        await access(request).record(who, "session.create", rec.id, site=str(site), goal=body.goal)
        return {**rec.to_dict(), "site": str(site)}

    @app.get("/agent/sessions")
    async def list_sessions(
        request: Request,
        limit: int = Query(50, ge=1, le=1000),
        status: str | None = None,
        who: Caller = Depends(caller),
    ) -> list[dict[str, Any]]:
        return await visible_sessions(request.app, who, limit=limit, status=status)

    @app.get("/agent/sessions/{session_id}")
    async def get_session(session_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
        m = mgr(request)
        rec = await m.store.get_session(session_id)
        if rec is None:
            raise HTTPException(404, f"no session {session_id}")
        site = await site_of(request, session_id)
        await access(request).require(who, "session.read", site, session_id)
        out = rec.to_dict()
        run = m.runs.get(session_id)
        out["site"] = str(site)
        out["live"] = run is not None
        out["waiting_for"] = [{"action": k, "kind": p.kind} for k, p in run.pending.items()] if run else []
        out["last_seq"] = await m.store.last_seq(session_id)
        return out

    @app.get("/agent/sessions/{session_id}/events")
    async def session_events(
        session_id: str,
        request: Request,
        after: int | None = Query(None, ge=0, le=MAX_SEQ, description="replay events with seq > after"),
        follow: bool = True,
        last_event_id: str | None = Header(default=None),
        who: Caller = Depends(caller),
    ) -> EventSourceResponse:
        m = mgr(request)
        rec = await m.store.get_session(session_id)
        if rec is None:
            raise HTTPException(404, f"no session {session_id}")
        await access(request).require(who, "session.read", await site_of(request, session_id), session_id)
        start = after if after is not None else _parse_last_id(last_event_id)
        if follow and m.shared_store and rec.status == "running" and session_id not in m.runs:
            # Another replica runs it: follow it through the shared store and the bus.
            return _sse(settings, sse_remote.follow_remote(m, session_id, start))
        return _sse(settings, sse.follow(m, session_id, start, follow_live=follow))

    @app.post("/agent/generate")
    async def generate(
        body: Generate, request: Request, who: Caller = Depends(caller)
    ) -> EventSourceResponse:
        m = mgr(request)
        acc = access(request)
        opts = RunOptions(
            yes=body.yes, max_iterations=body.max_iterations, model=body.model, mode=body.mode, node=body.node
        )
        sid = body.session
        if sid is None:
            if not body.goal or not body.goal.strip():
                raise RunnerError("the goal is empty: say what FazAI should do")
            site = parse_site(body.site)
            await acc.require(who, "session.run", site)
            sid = (await m.create(body.goal, mode=body.mode, model=body.model)).id
            await acc.auth.scopes.set(sid, site)
        elif await m.store.get_session(sid) is None:
            raise RunnerError(f"no session {sid} (list them with `fazai sessions`)", 404)
        else:
            await acc.require(who, "session.run", await site_of(request, sid), sid)
        if body.yes:
            # --yes approves on the caller's behalf: only for those who may approve.
            await acc.require(who, "session.approve", await site_of(request, sid), sid)
        after = await m.store.last_seq(sid)
        # Subscribe before the run starts, so its first event is already followed.
        sub = m.hub.subscribe(sid)
        try:
            await m.start_run(session_id=sid, goal=body.goal, options=opts)
        except Exception:
            m.hub.unsubscribe(sub)
            raise
        await acc.record(who, "session.run", sid, goal=body.goal, yes=body.yes, mode=body.mode)
        resp = _sse(settings, sse.follow(m, sid, after, sub=sub))
        resp.headers["X-Session-Id"] = sid
        return resp

    @app.post("/agent/abort")
    async def abort(body: Abort, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
        m = mgr(request)
        if await m.store.get_session(body.session) is None:
            raise HTTPException(404, f"no session {body.session}")
        await access(request).require(
            who, "session.abort", await site_of(request, body.session), body.session
        )
        remote = await m.forward(body.session, {"op": "abort"})  # another replica runs it
        if remote is not None:
            await access(request).record(who, "session.abort", body.session, "forwarded")
            return {"session": body.session, **remote}
        aborted = await m.abort(body.session)
        await access(request).record(who, "session.abort", body.session, "ok" if aborted else "fail")
        return {"session": body.session, "aborted": aborted}

    @app.post("/agent/reply")
    async def reply(body: Reply, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
        action: int | str = body.action
        if isinstance(action, str) and action.isdigit():
            action = int(action)
        if isinstance(action, int) and action > MAX_SEQ:
            raise HTTPException(400, f"action id {action} is out of range (0..{MAX_SEQ})")
        m = mgr(request)
        fwd = {"op": "reply", "action": action, "approved": body.approved, "answer": body.answer}
        # Another replica may run it: authorised here (the same policy, the role read from the
        # shared log), answered there.
        remote = await reply_as(
            request.app, who, body.session, action, approved=body.approved, answer=body.answer,
            forward=lambda: m.forward(body.session, fwd),
        )  # fmt: skip
        if remote is not None:
            return {"session": body.session, "action": action, **remote}
        return {"session": body.session, "action": action, "accepted": True}

    from fazai.server import fleet_routes

    app.include_router(fleet_routes.router(), dependencies=[Depends(requires("fleet.manage"))])

    from fazai.web import mount_console

    mount_console(app, settings)
    return app


def parse_site(value: str) -> Scope:
    """``ORG/SITE`` of a new session (a clear 400 otherwise)."""
    try:
        site = Scope.parse(value)
    except ValueError as e:
        raise RunnerError(str(e)) from e
    if site.org is None or site.site is None:
        raise RunnerError(f"a session belongs to one site: give ORG/SITE, not {value!r}")
    return site


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
