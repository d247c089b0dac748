"""Users and their grants in the store (async SQLAlchemy Core on the store's engine)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.auth.policy import Grant, Role, Scope
from fazai.auth.schema import grants, session_scopes, users
from fazai.auth.secrets import hash_password
from fazai.protocol import utcnow_iso

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class AuthError(Exception):
    """A user/grant/token operation was refused; the message says why and what to do."""


@dataclass(slots=True)
class UserRecord:
    id: int
    name: str
    password_hash: str
    disabled: bool
    token_version: int
    created_at: str
    grants: tuple[Grant, ...] = ()


def check_name(name: str) -> str:
    """A user name: lowercase letters, digits, ``.``, ``_``, ``-`` (1–64)."""
    if not NAME_RE.match(name):
        raise AuthError(f"bad user name {name!r}: use lowercase letters, digits, '.', '_' or '-' (max 64)")
    return name


class Users:
    """CRUD for users and grants."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def add(self, name: str, password: str) -> UserRecord:
        """Create a user (no grants yet)."""
        check_name(name)
        try:
            h = hash_password(password)
        except ValueError as e:
            raise AuthError(str(e)) from e
        try:
            async with self.engine.begin() as conn:
                res = await conn.execute(
                    insert(users).values(
                        name=name, password_hash=h, disabled=False, token_version=1, created_at=utcnow_iso()
                    )
                )
        except IntegrityError as e:
            raise AuthError(
                f"user {name} already exists (change the password with `fazai users passwd`)"
            ) from e
        uid = int(res.inserted_primary_key[0])
        return UserRecord(uid, name, h, False, 1, utcnow_iso())

    async def get(self, name: str) -> UserRecord | None:
        """The user with its grants, or None."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.name == name))).first()
            if row is None:
                return None
            return await self._with_grants(conn, row)

    async def get_by_id(self, uid: int) -> UserRecord | None:
        """The user with its grants, or None."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.id == uid))).first()
            if row is None:
                return None
            return await self._with_grants(conn, row)

    async def _with_grants(self, conn, row) -> UserRecord:  # type: ignore[no-untyped-def]
        m = row._mapping
        gs = (
            await conn.execute(select(grants.c.role, grants.c.scope).where(grants.c.user_id == m["id"]))
        ).all()
        return UserRecord(
            int(m["id"]),
            m["name"],
            m["password_hash"],
            bool(m["disabled"]),
            int(m["token_version"]),
            m["created_at"],
            tuple(sorted((Grant(Role.parse(g.role), Scope.parse(g.scope)) for g in gs), key=str)),
        )

    async def require(self, name: str) -> UserRecord:
        """The user, or a clear error."""
        u = await self.get(name)
        if u is None:
            raise AuthError(f"no user {name} (list them with `fazai users list`)")
        return u

    async def set_password(self, name: str, password: str) -> None:
        """New password; every refresh and access token issued before stops working."""
        u = await self.require(name)
        try:
            h = hash_password(password)
        except ValueError as e:
            raise AuthError(str(e)) from e
        async with self.engine.begin() as conn:
            await conn.execute(
                update(users)
                .where(users.c.id == u.id)
                .values(password_hash=h, token_version=u.token_version + 1)
            )

    async def rehash(self, uid: int, new_hash: str) -> None:
        """Store a stronger hash of the same password (after a successful login)."""
        async with self.engine.begin() as conn:
            await conn.execute(update(users).where(users.c.id == uid).values(password_hash=new_hash))

    async def grant(self, name: str, role: Role, scope: Scope) -> None:
        """Give ``role`` on ``scope`` (replacing the user's earlier role on that same scope)."""
        u = await self.require(name)
        async with self.engine.begin() as conn:
            await conn.execute(delete(grants).where(grants.c.user_id == u.id, grants.c.scope == str(scope)))
            await conn.execute(insert(grants).values(user_id=u.id, role=role.name, scope=str(scope)))

    async def revoke(self, name: str, scope: Scope) -> bool:
        """Remove the user's grant on ``scope``; False when there was none."""
        u = await self.require(name)
        async with self.engine.begin() as conn:
            res = await conn.execute(
                delete(grants).where(grants.c.user_id == u.id, grants.c.scope == str(scope))
            )
        return bool(res.rowcount)

    async def list(self) -> list[UserRecord]:
        """Every user with its grants, by name."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.name))).all()
            return [await self._with_grants(conn, r) for r in rows]


class SessionScopes:
    """The organisation/site each session belongs to (sessions without a row are ``default/default``)."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def set(self, session_id: str, scope: Scope) -> None:
        if scope.org is None or scope.site is None:
            raise AuthError(f"a session belongs to one site (ORG/SITE), not {scope}")
        async with self.engine.begin() as conn:
            await conn.execute(delete(session_scopes).where(session_scopes.c.session_id == session_id))
            await conn.execute(
                insert(session_scopes).values(session_id=session_id, org=scope.org, site=scope.site)
            )

    async def get(self, session_id: str) -> Scope:
        return (await self.many([session_id]))[session_id]

    async def many(self, ids: list[str]) -> dict[str, Scope]:
        from fazai.auth.policy import DEFAULT_SITE

        out = dict.fromkeys(ids, DEFAULT_SITE)
        if not ids:
            return out
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(session_scopes).where(session_scopes.c.session_id.in_(ids)))
            ).all()
        for r in rows:
            out[r.session_id] = Scope(r.org, r.site)
        return out
