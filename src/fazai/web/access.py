"""Authentication and authorisation of every daemon request (HTTP API, SSE, console).

Shared by ``fazai.server`` (the API) and the console routes of ``fazai.web``; it lives here because
nothing may import ``server``.

One dependency resolves the caller to a :class:`~fazai.auth.Principal` (bearer header first, then the
console's cookie); every route then asks :func:`fazai.auth.authorize` through :meth:`Access.require`.
Cookie-authenticated state changes must carry the CSRF token (double-submit, HMAC-signed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request

from fazai.audit import AuditLog
from fazai.auth import (
    BOOTSTRAP,
    AuthService,
    CredentialError,
    Principal,
    Role,
    Scope,
    approval_role,
    authorize,
)
from fazai.auth.ratelimit import LoginLimiter

log = structlog.get_logger("fazai.daemon")

ACCESS_COOKIE = "fazai_at"
REFRESH_COOKIE = "fazai_rt"
CSRF_COOKIE = "fazai_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# State-changing actions whose denials are audited (read denials would flood the trail).
AUDITED_DENIALS = {
    "session.run",
    "session.answer",
    "session.abort",
    "session.approve",
    "kb.review",
    "users.manage",
    "secrets.manage",
}


@dataclass(slots=True)
class Caller:
    """The resolved principal, how it authenticated, and where from."""

    principal: Principal
    via: str  # "bearer" | "cookie" | "open"
    source: str


def client_addr(request: Request) -> str:
    """The peer address (no proxy headers are trusted)."""
    return request.client.host if request.client else "unknown"


class Access:
    """Auth, audit and login limits of one daemon."""

    def __init__(self, auth: AuthService, audit: AuditLog, *, open_access: bool, state_dir: Path):
        self.auth = auth
        self.audit = audit
        self.open_access = open_access
        self.limiter = LoginLimiter()
        self.state_dir = state_dir

    # -- CSRF ------------------------------------------------------------------------------------

    def new_csrf(self) -> str:
        """A random value with its HMAC, for the CSRF cookie and the forms."""
        raw = secrets.token_urlsafe(16)
        mac = hmac.new(self.auth.key, b"csrf:" + raw.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{raw}.{mac}"

    def csrf_ok(self, request: Request, sent: str | None) -> bool:
        """The sent token equals the cookie and carries a valid HMAC."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not sent or not cookie or not hmac.compare_digest(sent, cookie):
            return False
        raw, _, mac = cookie.partition(".")
        want = hmac.new(self.auth.key, b"csrf:" + raw.encode(), hashlib.sha256).hexdigest()[:32]
        return hmac.compare_digest(mac, want)

    # -- who is calling ------------------------------------------------------------------------

    async def caller(self, request: Request, *, csrf_form: str | None = None) -> Caller:
        """Resolve the caller or raise 401; cookie state changes without CSRF token → 403."""
        src = client_addr(request)
        header = request.headers.get("authorization")
        if header:
            if not header.lower().startswith("bearer "):
                raise self._unauthorized("send `Authorization: Bearer <token>`")
            try:
                return Caller(await self.auth.principal(header[7:]), "bearer", src)
            except CredentialError as e:
                raise self._unauthorized(str(e)) from e
        cookie = request.cookies.get(ACCESS_COOKIE)
        if cookie:
            try:
                p = await self.auth.principal(cookie)
            except CredentialError as e:
                raise self._unauthorized(str(e)) from e
            if request.method not in SAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER) or csrf_form
                if not self.csrf_ok(request, sent):
                    await self.audit.append(p.name, "csrf", request.url.path, "deny", source=src)
                    raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
            return Caller(p, "cookie", src)
        if self.open_access:
            return Caller(BOOTSTRAP, "open", src)
        raise self._unauthorized("missing bearer token")

    def _unauthorized(self, why: str) -> HTTPException:
        return HTTPException(
            401,
            f"not authenticated ({why}): send "
            f"`Authorization: Bearer $(cat {self.state_dir / 'daemon.token'})`"
            " or an access/API token (see `fazai users`, `fazai tokens`)",
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def require(
        self,
        caller: Caller,
        action: str,
        scope: Scope | None = None,
        target: str = "",
        *,
        at_least: Role | None = None,
    ) -> None:
        """403 unless :func:`authorize` allows it (state-changing denials are audited)."""
        d = authorize(caller.principal, action, scope, at_least=at_least)
        if not d.allowed:
            if action in AUDITED_DENIALS:
                await self.audit.append(
                    caller.principal.name,
                    action,
                    target or str(scope or ""),
                    "deny",
                    source=caller.source,
                    detail={"reason": d.reason},
                )
            raise HTTPException(403, f"forbidden: {d.reason}")

    def may(
        self, caller: Caller, action: str, scope: Scope | None = None, *, at_least: Role | None = None
    ) -> bool:
        """The same decision, for showing or hiding a button."""
        return authorize(caller.principal, action, scope, at_least=at_least).allowed

    async def record(
        self, caller: Caller, action: str, target: str, decision: str = "ok", **detail: Any
    ) -> None:
        """One audit record for something the caller did."""
        await self.audit.append(
            caller.principal.name, action, target, decision, source=caller.source, detail=detail
        )


async def password_login(acc: Access, name: str, password: str, source: str) -> Any:
    """Check a password (rate-limited per address and name; one answer for every failure)."""
    keys = (f"ip:{source}", f"user:{name.lower()}")
    wait = acc.limiter.retry_after(*keys)
    if wait > 0:
        await acc.audit.append(name[:100], "login", name[:300], "deny", source=source, detail={"why": "rate"})
        raise HTTPException(
            429,
            f"too many failed sign-ins: wait {int(wait) + 1} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    user = await acc.auth.check_password(name, password)
    if user is None:
        acc.limiter.failed(*keys)
        await acc.audit.append(name[:100], "login", name[:300], "fail", source=source)
        # Same message whether the name exists or not: no user enumeration.
        raise HTTPException(401, "wrong user name or password")
    acc.limiter.succeeded(*keys)
    await acc.audit.append(user.name, "login", user.name, "ok", source=source)
    return await acc.auth.issue(user)


async def visible_sessions(
    app: FastAPI, who: Caller, *, limit: int = 50, status: str | None = None
) -> list[dict[str, Any]]:
    """Sessions the caller may read, newest first, each with its site."""
    m: Any = app.state.manager
    recs = await m.store.list_sessions(limit=limit, status=status)
    sites = await app.state.access.auth.scopes.many([r.id for r in recs])
    return [
        {**r.to_dict(), "site": str(sites[r.id]), "live": r.id in m.runs}
        for r in recs
        if authorize(who.principal, "session.read", sites[r.id]).allowed
    ]


async def asked_approval(store: Any, session: str, action: int | str) -> dict[str, Any] | None:
    """The ``approval_required`` event data of ``action`` in the session's log (None: not an approval).

    Read from the store, not the run, so a replica that does not run the session decides the same.
    """
    from sqlalchemy import select

    from fazai.store.schema import events

    q = (
        select(events.c.data)
        .where(events.c.session == session, events.c.kind == "approval_required")
        .order_by(events.c.seq.desc())
        .limit(500)
    )
    async with store.engine.connect() as conn:
        for (data,) in (await conn.execute(q)).all():
            if isinstance(data, dict) and str(data.get("action")) == str(action):
                return data
    return None


async def reply_as(
    app: FastAPI,
    who: Caller,
    session: str,
    action: int | str,
    *,
    approved: bool | None,
    answer: str | None,
    forward: Any = None,
) -> dict[str, Any] | None:
    """Answer a pending approval (needs session.approve, and the role a playbook step names) or a
    question (session.answer), audited. ``forward`` (an async callable) hands an authorised reply to
    the replica that runs the session; its answer is returned (None when answered here)."""
    m: Any = app.state.manager
    acc: Access = app.state.access
    if await m.store.get_session(session) is None:
        raise HTTPException(404, f"no session {session}")
    site = await acc.auth.scopes.get(session)
    run = m.runs.get(session)
    pending = run.pending.get(action) if run else None
    asked = (
        await asked_approval(m.store, session, action)
        if pending is None or pending.kind == "approval"
        else None
    )
    if pending is not None:
        is_approval = pending.kind == "approval"
    else:
        is_approval = asked is not None or approved is not None
    role = approval_role(getattr(pending, "role", None) or (asked or {}).get("role")) if is_approval else None
    what = "session.approve" if is_approval else "session.answer"
    target = f"{session}#{action}"
    await acc.require(who, what, site, target, at_least=role)
    extra = {"role": role.name} if role is not None else {}
    remote = await forward() if forward is not None and run is None else None
    if remote is None:
        m.reply(session, action, approved=approved, answer=answer)
    else:
        extra["replica"] = remote.get("replica")
    if is_approval:
        await acc.record(who, "approval", target, "allow" if approved else "deny", **extra)
    else:
        await acc.record(who, "answer", target, **extra)
    return remote
