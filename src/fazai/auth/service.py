"""Signing in and resolving credentials to a :class:`Principal`.

Credentials, all sent as ``Authorization: Bearer …`` (the console keeps the access token in a cookie):
the bootstrap token (the daemon's old single token: an admin on ``*``), an access JWT, or a scoped API
token ``fzt_<id>_<secret>``. Refresh tokens ``fzr_<id>_<secret>`` are single-use: each refresh returns
a new pair and retires the old one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.auth import jwt_tokens
from fazai.auth.policy import GLOBAL, Grant, Principal, Role, Scope
from fazai.auth.schema import api_tokens, refresh_tokens
from fazai.auth.secrets import (
    _HASHER,
    digest,
    ensure_key_file,
    needs_rehash,
    new_token,
    same,
    split_token,
    verify_password,
)
from fazai.auth.users import AuthError, SessionScopes, UserRecord, Users

REFRESH_TTL_S = 7 * 24 * 3600
BOOTSTRAP = Principal("bootstrap", "bootstrap", (Grant(Role.admin, GLOBAL),))


class CredentialError(Exception):
    """The credential is missing, wrong, expired or revoked (HTTP 401)."""


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class ApiTokenInfo:
    id: str
    user: str
    name: str
    role: str
    scope: str
    created_at: str
    expires_at: str | None
    revoked: bool


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def jwt_key_path(state_dir: Path) -> Path:
    """Where the access-token signing key lives (0600, created on first use)."""
    return Path(state_dir) / "jwt.key"


class AuthService:
    """Users, tokens and the resolution of credentials, on the store's engine."""

    def __init__(self, engine: AsyncEngine, state_dir: Path, *, bootstrap_token: str | None = None):
        self.engine = engine
        self.users = Users(engine)
        self.scopes = SessionScopes(engine)
        self.bootstrap_token = bootstrap_token
        self._key_path = jwt_key_path(state_dir)
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        """The HS256 signing key (a 0600 file; a wider mode is refused)."""
        if self._key is None:
            self._key = ensure_key_file(self._key_path, 32)
        return self._key

    # -- signing in ----------------------------------------------------------------------------

    async def check_password(self, name: str, password: str) -> UserRecord | None:
        """The user when name and password match and the user is enabled; None otherwise (same cost)."""
        u = await self.users.get(name) if name else None
        ok = verify_password(u.password_hash if u else None, password)
        if not ok or u is None or u.disabled:
            return None
        if needs_rehash(u.password_hash):
            await self.users.rehash(u.id, _HASHER.hash(password))
        return u

    async def issue(self, user: UserRecord) -> TokenPair:
        """A new access token and a new refresh token for the user."""
        access = jwt_tokens.issue_access(self.key, user.id, user.name, user.token_version)
        token, tid, h = new_token("fzr")
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(refresh_tokens).values(
                    id=tid,
                    user_id=user.id,
                    secret_hash=h,
                    token_version=user.token_version,
                    expires_at=_iso(_now() + dt.timedelta(seconds=REFRESH_TTL_S)),
                    used=False,
                )
            )
        return TokenPair(access, token, jwt_tokens.ACCESS_TTL_S)

    async def refresh(self, token: str) -> TokenPair:
        """Exchange a refresh token (once) for a new pair."""
        parts = split_token(token, "fzr")
        if parts is None:
            raise CredentialError("not a refresh token")
        tid, secret = parts
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(refresh_tokens).where(refresh_tokens.c.id == tid))).first()
            if row is None or not same(row.secret_hash, digest(secret)):
                raise CredentialError("unknown refresh token: sign in again")
            # Single use: the update only succeeds for the first caller.
            res = await conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.id == tid, refresh_tokens.c.used.is_(False))
                .values(used=True)
            )
            if not res.rowcount:
                raise CredentialError("this refresh token was already used: sign in again")
            if _parse(row.expires_at) < _now():
                raise CredentialError("the refresh token has expired: sign in again")
        user = await self.users.get_by_id(row.user_id)
        if user is None or user.disabled or user.token_version != row.token_version:
            raise CredentialError("the password changed or the user was removed: sign in again")
        return await self.issue(user)

    # -- API tokens ------------------------------------------------------------------------------

    async def create_api_token(
        self, user: str, name: str, role: Role, scope: Scope, ttl_days: int | None = None
    ) -> tuple[str, ApiTokenInfo]:
        """A scoped API token for ``user``: it never gets more than the user has at that scope."""
        u = await self.users.require(user)
        held = Principal("user", u.name, u.grants).role_at(scope)
        if held is None or held < role:
            raise AuthError(
                f"{user} cannot hand out {role.name} on {scope}: "
                f"they hold {held.name if held else 'no role'} there"
            )
        token, tid, h = new_token("fzt")
        now = _now()
        exp = _iso(now + dt.timedelta(days=ttl_days)) if ttl_days else None
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(api_tokens).values(
                    id=tid,
                    user_id=u.id,
                    name=name,
                    secret_hash=h,
                    role=role.name,
                    scope=str(scope),
                    created_at=_iso(now),
                    expires_at=exp,
                    revoked=False,
                )
            )
        return token, ApiTokenInfo(tid, u.name, name, role.name, str(scope), _iso(now), exp, False)

    async def list_api_tokens(self) -> list[ApiTokenInfo]:
        """Every API token (never the secret)."""
        from fazai.auth.schema import users

        q = select(api_tokens, users.c.name.label("user_name")).join(
            users, users.c.id == api_tokens.c.user_id
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.order_by(api_tokens.c.created_at))).all()
        return [
            ApiTokenInfo(
                r.id, r.user_name, r.name, r.role, r.scope, r.created_at, r.expires_at, bool(r.revoked)
            )
            for r in rows
        ]

    async def revoke_api_token(self, tid: str) -> bool:
        """Revoke by id; False when no such token."""
        async with self.engine.begin() as conn:
            res = await conn.execute(update(api_tokens).where(api_tokens.c.id == tid).values(revoked=True))
        return bool(res.rowcount)

    # -- resolving credentials -----------------------------------------------------------------

    async def principal(self, bearer: str) -> Principal:
        """Who this bearer credential is; :class:`CredentialError` when it is no valid credential."""
        bearer = bearer.strip()
        if not bearer:
            raise CredentialError("empty credential")
        if self.bootstrap_token is not None and same(bearer, self.bootstrap_token):
            return BOOTSTRAP
        if bearer.startswith("fzt_"):
            return await self._api_token(bearer)
        if jwt_tokens.looks_like_jwt(bearer):
            try:
                claims = jwt_tokens.decode_access(self.key, bearer)
            except jwt_tokens.TokenError as e:
                raise CredentialError(str(e)) from e
            u = await self.users.get_by_id(claims.user_id)
            if u is None or u.disabled or u.token_version != claims.version:
                raise CredentialError("the access token was revoked (password changed or user removed)")
            return Principal("user", u.name, u.grants, u.id)
        raise CredentialError("unknown credential")

    async def _api_token(self, bearer: str) -> Principal:
        parts = split_token(bearer, "fzt")
        if parts is None:
            raise CredentialError("malformed API token")
        tid, secret = parts
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(api_tokens).where(api_tokens.c.id == tid))).first()
        if row is None or not same(row.secret_hash, digest(secret)):
            raise CredentialError("unknown API token")
        if row.revoked:
            raise CredentialError(f"API token {tid} was revoked")
        if row.expires_at and _parse(row.expires_at) < _now():
            raise CredentialError(f"API token {tid} has expired")
        u = await self.users.get_by_id(row.user_id)
        if u is None or u.disabled:
            raise CredentialError("the API token's user is gone or disabled")
        # The token's role, capped by what its user holds there today.
        scope = Scope.parse(row.scope)
        user_role = Principal("user", u.name, u.grants).role_at(scope)
        role = min(Role.parse(row.role), user_role) if user_role else None
        grants = (Grant(role, scope),) if role else ()
        return Principal("token", f"{u.name}:{row.name}", grants, u.id)
