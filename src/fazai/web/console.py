"""The console's pages: sign-in, sessions, the live session view, approvals, audit.

Server-rendered (Jinja2, autoescaped) and made live with htmx and its SSE extension; every page and
action asks the same :func:`fazai.auth.authorize` as the API, through :class:`~fazai.web.access.Access`.
The knowledge-base and fleet pages are in :mod:`fazai.web.pages`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sse_starlette import EventSourceResponse, ServerSentEvent

from fazai.auth import CredentialError, Role, Scope, approval_role, authorize
from fazai.protocol import Event
from fazai.sessions.follow import follow_items
from fazai.web import render
from fazai.web.access import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    REFRESH_COOKIE,
    Access,
    Caller,
    password_login,
    reply_as,
    visible_sessions,
)


class ConsoleRedirect(Exception):
    """Not signed in (or the access token expired): send the browser to ``url``."""

    def __init__(self, url: str):
        self.url = url


class ConsoleError(Exception):
    """A page-level error shown as an HTML page with ``status``."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message


def _access(request: Request) -> Access:
    return request.app.state.access


def _safe_next(value: str | None) -> str:
    # Only paths inside the console: no open redirect to another site.
    if value and value.startswith("/console/") and not value.startswith("//"):
        return value
    return "/console/sessions"


def set_login_cookies(resp: Response, request: Request, access: str, refresh: str, csrf: str) -> None:
    """HttpOnly, SameSite=Strict cookies (Secure when the daemon is reached over HTTPS)."""
    secure = request.url.scheme == "https"
    for name, value, age in (
        (ACCESS_COOKIE, access, 900),
        (REFRESH_COOKIE, refresh, 7 * 24 * 3600),
        (CSRF_COOKIE, csrf, 7 * 24 * 3600),
    ):
        resp.set_cookie(name, value, max_age=age, httponly=True, samesite="strict", secure=secure, path="/")


async def who(request: Request, *, csrf_form: str | None = None) -> Caller:
    """The signed-in caller, or a redirect to refresh the access token or to sign in."""
    acc = _access(request)
    if request.headers.get("authorization") or request.cookies.get(ACCESS_COOKIE):
        try:
            return await acc.caller(request, csrf_form=csrf_form)
        except HTTPException as e:
            if e.status_code != 401 or request.headers.get("authorization"):
                raise ConsoleError(e.status_code, str(e.detail)) from e
    elif acc.open_access:
        return await acc.caller(request)
    nxt = request.url.path
    if request.cookies.get(REFRESH_COOKIE) and request.method == "GET":
        raise ConsoleRedirect(f"/console/refresh?next={nxt}")
    raise ConsoleRedirect(f"/console/login?next={nxt}" if request.method == "GET" else "/console/login")


async def check(
    request: Request, caller: Caller, action: str, scope: Scope | None = None, target: str = ""
) -> None:
    """The policy decision for a page, as a 403 page."""
    try:
        await _access(request).require(caller, action, scope, target)
    except HTTPException as e:
        raise ConsoleError(e.status_code, str(e.detail)) from e


def ctx(request: Request, caller: Caller, **more: Any) -> dict[str, Any]:
    """What every page needs: the caller, the CSRF token, which menu entries to show."""
    return {
        "who": caller.principal,
        "csrf": request.cookies.get(CSRF_COOKIE, ""),
        "may_audit": authorize(caller.principal, "audit.read").allowed,
        **more,
    }


def html(name: str, code: int = 200, **context: Any) -> HTMLResponse:
    """A rendered page with HTTP status ``code``."""
    return HTMLResponse(render.page(name, **context), status_code=code)


def mount(app: FastAPI, settings: Any) -> None:
    """Add the console's routes, static files and error pages to the daemon's app."""
    app.mount("/console/static", StaticFiles(directory=render.STATIC), name="console-static")

    @app.exception_handler(ConsoleRedirect)
    async def _redirect(request: Request, exc: ConsoleRedirect) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": exc.url})
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(ConsoleError)
    async def _error(request: Request, exc: ConsoleError) -> Response:
        if request.headers.get("hx-request"):
            return HTMLResponse(render.page("_message.html", message=exc.message), status_code=exc.status)
        return html("error.html", exc.status, status=exc.status, message=exc.message, who=None)

    r = APIRouter(prefix="/console")
    _auth_routes(r)
    _session_routes(r, settings)
    from fazai.web.pages import add_pages

    add_pages(r, settings)
    app.include_router(r)


def _auth_routes(r: APIRouter) -> None:
    @r.get("")
    @r.get("/")
    async def root() -> Response:
        return RedirectResponse("/console/sessions", status_code=303)

    @r.get("/login")
    async def login_page(request: Request, next: str | None = None) -> Response:
        acc = _access(request)
        token = request.cookies.get(CSRF_COOKIE)
        if not token or not acc.csrf_ok(request, token):
            token = acc.new_csrf()
        resp = html("login.html", login_csrf=token, next=_safe_next(next), who=None)
        resp.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
        return resp

    @r.post("/login")
    async def login_submit(
        request: Request,
        name: str = Form(""),
        password: str = Form(""),
        csrf: str = Form(""),
        next: str = Form(""),
    ) -> Response:
        acc = _access(request)
        if not acc.csrf_ok(request, csrf):
            raise ConsoleError(403, "missing or wrong CSRF token: reload the sign-in page and try again")
        try:
            pair = await password_login(acc, name, password, request.client.host if request.client else "?")
        except HTTPException as e:
            resp = html(
                "login.html", e.status_code, error=e.detail, login_csrf=csrf, next=_safe_next(next), who=None
            )
            return resp
        resp = RedirectResponse(_safe_next(next), status_code=303)
        set_login_cookies(resp, request, pair.access, pair.refresh, acc.new_csrf())
        return resp

    @r.get("/refresh")
    async def refresh(request: Request, next: str | None = None) -> Response:
        acc = _access(request)
        try:
            pair = await acc.auth.refresh(request.cookies.get(REFRESH_COOKIE, ""))
        except CredentialError:
            resp = RedirectResponse(f"/console/login?next={_safe_next(next)}", status_code=303)
            resp.delete_cookie(REFRESH_COOKIE, path="/")
            return resp
        resp = RedirectResponse(_safe_next(next), status_code=303)
        set_login_cookies(
            resp, request, pair.access, pair.refresh, request.cookies.get(CSRF_COOKIE) or acc.new_csrf()
        )
        return resp

    @r.post("/logout")
    async def logout(request: Request, csrf: str = Form("")) -> Response:
        caller = await who(request, csrf_form=csrf)
        acc = _access(request)
        rt = request.cookies.get(REFRESH_COOKIE)
        if rt:
            with contextlib.suppress(CredentialError):  # retire it: a used refresh token is spent
                await acc.auth.refresh(rt)
        await acc.record(caller, "logout", caller.principal.name)
        resp = RedirectResponse("/console/login", status_code=303)
        for c in (ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE):
            resp.delete_cookie(c, path="/")
        return resp


def _session_routes(r: APIRouter, settings: Any) -> None:
    def mgr(request: Request) -> Any:
        return request.app.state.manager

    @r.get("/sessions")
    async def sessions(request: Request) -> Response:
        caller = await who(request)
        rows = await visible_sessions(request.app, caller, limit=200)
        best = caller.principal.best_role()
        return html(
            "sessions.html",
            **ctx(
                request,
                caller,
                sessions=rows,
                default_site="default/default",
                may_run_somewhere=best is not None and best >= Role.operator,
            ),
        )

    @r.post("/sessions")
    async def new_session(
        request: Request, goal: str = Form(""), site: str = Form("default/default"), csrf: str = Form("")
    ) -> Response:
        caller = await who(request, csrf_form=csrf)
        try:
            scope = Scope.parse(site)
            if scope.org is None or scope.site is None:
                raise ValueError(f"a session belongs to one site: give ORG/SITE, not {site!r}")
        except ValueError as e:
            raise ConsoleError(400, str(e)) from e
        if not goal.strip():
            raise ConsoleError(400, "the goal is empty: say what FazAI should do")
        await check(request, caller, "session.run", scope)
        m = mgr(request)
        rec = await m.create(goal)
        await _access(request).auth.scopes.set(rec.id, scope)
        await m.start_run(session_id=rec.id, goal=goal)
        await _access(request).record(caller, "session.run", rec.id, goal=goal, via="console")
        return RedirectResponse(f"/console/sessions/{rec.id}", status_code=303)

    async def _session(request: Request, caller: Caller, sid: str, action: str) -> tuple[Any, Scope]:
        rec = await mgr(request).store.get_session(sid)
        if rec is None:
            raise ConsoleError(404, f"no session {sid}")
        site = await _access(request).auth.scopes.get(sid)
        await check(request, caller, action, site, sid)
        return rec, site

    @r.get("/sessions/{sid}")
    async def session_page(sid: str, request: Request) -> Response:
        caller = await who(request)
        rec, site = await _session(request, caller, sid, "session.read")
        live = sid in mgr(request).runs
        may_abort = _access(request).may(caller, "session.abort", site)
        return html(
            "session.html", **ctx(request, caller, s=rec, site=str(site), live=live, may_abort=may_abort)
        )

    @r.get("/sessions/{sid}/stream")
    async def session_stream(sid: str, request: Request) -> EventSourceResponse:
        caller = await who(request)
        _, site = await _session(request, caller, sid, "session.read")
        acc = _access(request)

        def may_approve(role: str | None) -> bool:
            # The role a playbook step names raises what is needed (the same check as the reply).
            return acc.may(caller, "session.approve", site, at_least=approval_role(role))

        m = mgr(request)
        try:
            start = max(0, int(request.headers.get("last-event-id") or 0))
        except ValueError:
            start = 0

        async def gen():  # type: ignore[no-untyped-def]
            async for item in follow_items(m, sid, start):
                if isinstance(item, Event):
                    yield ServerSentEvent(data=_fragment(m, item, may_approve), id=str(item.seq))
                else:
                    name, data = item
                    if name == "end":
                        yield ServerSentEvent(
                            data=render.page("_ended.html", status=data.get("status")), event="end"
                        )
                    else:  # lagged: the browser reconnects with Last-Event-ID and replays what it missed
                        yield ServerSentEvent(
                            data=render.page("_message.html", message=data["message"]), event=name
                        )

        return EventSourceResponse(
            gen(),
            ping=15,
            send_timeout=settings.daemon.sse_send_timeout_s,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @r.post("/sessions/{sid}/reply")
    async def reply(
        sid: str,
        request: Request,
        action: str = Form(""),
        approved: str | None = Form(None),
        answer: str | None = Form(None),
        csrf: str = Form(""),
    ) -> Response:
        caller = await who(request, csrf_form=csrf)
        if not action:
            raise ConsoleError(400, "which action? send action=<id>")
        aid: int | str = int(action) if action.isdigit() else action
        ok = None if approved is None else approved.lower() in ("1", "true", "yes", "on")
        try:
            await reply_as(request.app, caller, sid, aid, approved=ok, answer=answer)
        except HTTPException as e:
            raise ConsoleError(e.status_code, str(e.detail)) from e
        except Exception as e:  # RunnerError: not running / not waiting
            status = getattr(e, "status", 400)
            raise ConsoleError(status, str(e)) from e
        word = "approved" if ok else "denied" if ok is not None else "answered"
        return HTMLResponse(render.page("_message.html", message=f"{word} by {caller.principal.name}"))

    @r.post("/sessions/{sid}/abort")
    async def abort(sid: str, request: Request, csrf: str = Form("")) -> Response:
        caller = await who(request, csrf_form=csrf)
        await _session(request, caller, sid, "session.abort")
        done = await mgr(request).abort(sid)
        await _access(request).record(caller, "session.abort", sid, "ok" if done else "fail", via="console")
        return HTMLResponse(render.page("_message.html", message="aborting…" if done else "not running"))

    @r.get("/approvals")
    async def approvals(request: Request) -> Response:
        caller = await who(request)
        m = mgr(request)
        acc = _access(request)
        sites = await acc.auth.scopes.many(list(m.runs))
        pending = []
        for sid, run in list(m.runs.items()):
            site = sites.get(sid)
            if site is None or not acc.may(caller, "session.read", site):
                continue
            for aid, p in list(run.pending.items()):
                if p.kind != "approval" or p.future.done():
                    continue
                evs = [
                    e
                    for e in await m.store.events(sid)
                    if e.kind == "approval_required" and e.data.get("action") == aid
                ]
                d = evs[-1].data if evs else {}
                pending.append(
                    {
                        "session": sid,
                        "action": aid,
                        "site": str(site),
                        "goal": run.goal,
                        "command": d.get("summary"),
                        "risk": d.get("risk"),
                        "reasons": d.get("reasons"),
                        "role": d.get("role"),
                        "may_approve": acc.may(
                            caller, "session.approve", site, at_least=approval_role(d.get("role"))
                        ),
                    }
                )
        return html("approvals.html", **ctx(request, caller, pending=pending))


def _fragment(m: Any, ev: Event, may_approve: Any) -> str:
    pending, may = False, False
    if ev.kind == "approval_required":
        run = m.runs.get(ev.session)
        p = run.pending.get(ev.data.get("action")) if run else None
        pending = p is not None and not p.future.done()
        may = may_approve(ev.data.get("role"))
    return render.event_html(ev, pending=pending, may_approve=may)
