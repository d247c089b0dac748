"""Queries of the session store: sessions and their append-only event logs."""

from __future__ import annotations

import errno
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.protocol import Event, utcnow_iso
from fazai.store import db
from fazai.store.appender import SQLiteAppender
from fazai.store.files import FileModeError, sqlite_path
from fazai.store.reserve import DiskReserve
from fazai.store.schema import SESSION_STATUSES, events, replicas, sessions


class StoreError(Exception):
    """The store refused an operation; the message says why and what to do."""


class SchemaError(StoreError):
    """The database schema is not the one this FazAI needs (behind, or from a newer FazAI)."""


def new_session_id() -> str:
    """A fresh session id: ``s_`` + 16 hex digits."""
    return "s_" + uuid.uuid4().hex[:16]


@dataclass(slots=True, frozen=True)
class StatusUpdate:
    """A session's final status, written in order with its events (see ``EventWriter``)."""

    session: str
    status: str
    summary: str | None = None


@dataclass(slots=True)
class SessionRecord:
    """One row of ``sessions``."""

    id: str
    goal: str
    mode: str
    status: str
    created_at: str
    updated_at: str
    model: str | None = None
    summary: str | None = None
    replica: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "goal": self.goal,
            "mode": self.mode,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "model": self.model,
            "summary": self.summary,
            "replica": self.replica,
        }


def _record(row: Any) -> SessionRecord:
    m = row._mapping
    return SessionRecord(**{k: m[k] for k in SessionRecord.__slots__})  # type: ignore[attr-defined]


class Store:
    """Sessions and events on one database. Create with :meth:`open` (which migrates)."""

    def __init__(self, engine: AsyncEngine, url: str, reserve: DiskReserve | None = None):
        self.engine = engine
        self.url = url
        # Ballast given up when the disk fills, so a failing session can still record why it stopped.
        self.reserve = reserve
        self._appender: SQLiteAppender | None = None  # made on the first append (SQLite files only)
        self._no_appender = False

    @classmethod
    async def open(cls, url: str, *, reserve_bytes: int = 0, migrate: bool | None = None) -> Store:
        """Open the store at ``url``, migrating it (``migrate``) or checking its schema.

        ``migrate=None``: migrate SQLite (one process owns it), check PostgreSQL (shared by replicas,
        upgraded once with ``fazai store migrate``). A schema that is behind or from a newer FazAI
        raises :class:`SchemaError` saying what to run. ``reserve_bytes``: a SQLite store keeps that
        much disk set aside (see :mod:`.reserve`).
        """
        try:
            engine = db.create_engine(url)
        except (OSError, FileModeError) as e:
            raise StoreError(f"cannot open the session store at {_safe(url)}: {_reason(e)}") from e
        if migrate is None:
            migrate = not db.normalize_url(url).startswith("postgresql")
        try:
            if migrate:
                await db.migrate(engine)
            else:
                await _check_schema(engine, url)
        except SchemaError:
            await engine.dispose()
            raise
        except Exception as e:
            await engine.dispose()
            raise StoreError(f"cannot open the session store at {_safe(url)}: {_reason(e)}") from e
        reserve = None
        path = sqlite_path(db.normalize_url(url))
        if path is not None and reserve_bytes > 0:
            reserve = DiskReserve(path.with_name(path.name + ".reserve"), reserve_bytes)
            reserve.ensure()
        return cls(engine, db.normalize_url(url), reserve)

    @property
    def location(self) -> str:
        """Where the store lives, for messages: the SQLite file's folder, or the URL sans password."""
        path = sqlite_path(self.url)
        return str(path.parent) if path is not None else _safe(self.url)

    async def close(self) -> None:
        """Release the connections."""
        if self._appender is not None:
            appender, self._appender = self._appender, None
            await appender.close()
        await self.engine.dispose()

    # -- sessions ---------------------------------------------------------------------------

    async def create_session(
        self,
        goal: str,
        *,
        mode: str = "agent",
        model: str | None = None,
        session_id: str | None = None,
        replica: str | None = None,
        status: str = "created",
    ) -> SessionRecord:
        """Insert a new session (``created``: listed as running only once a run starts) and return it."""
        now = utcnow_iso()
        rec = SessionRecord(
            id=session_id or new_session_id(),
            goal=goal,
            mode=mode,
            status=status,
            created_at=now,
            updated_at=now,
            model=model,
            replica=replica,
        )
        async with self.engine.begin() as conn:
            await conn.execute(insert(sessions).values(**rec.to_dict()))
        return rec

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or ``None`` when there is no such id."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).first()
        return _record(row) if row else None

    async def list_sessions(self, *, limit: int = 50, status: str | None = None) -> list[SessionRecord]:
        """Most recently updated first."""
        q = select(sessions).order_by(sessions.c.updated_at.desc(), sessions.c.id).limit(limit)
        if status:
            q = q.where(sessions.c.status == status)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [_record(r) for r in rows]

    async def update_session(
        self,
        session_id: str,
        *,
        status: str | None = None,
        summary: str | None = None,
        goal: str | None = None,
        model: str | None = None,
        replica: str | None = None,
    ) -> None:
        """Change a session's status / summary / goal / model / replica (``updated_at`` follows)."""
        if status is not None and status not in SESSION_STATUSES:
            raise StoreError(f"unknown session status {status!r} (one of {', '.join(SESSION_STATUSES)})")
        values: dict[str, Any] = {"updated_at": utcnow_iso()}
        pairs = (("status", status), ("summary", summary), ("goal", goal), ("model", model))
        for key, val in (*pairs, ("replica", replica)):
            if val is not None:
                values[key] = val
        async with self.engine.begin() as conn:
            await conn.execute(update(sessions).where(sessions.c.id == session_id).values(**values))

    async def mark_running_interrupted(
        self, replica: str | None = None, *, stale_after_s: float | None = None, own: bool = True
    ) -> list[str]:
        """Sessions left ``running`` by a crash become ``interrupted``.

        Without ``replica``: all of them (one process owns the store). With it (replicas sharing
        PostgreSQL): those of this replica, of no replica, and of replicas whose heartbeat is older
        than ``stale_after_s`` — never the live runs of another replica. ``own=False`` (the periodic
        sweep of a running replica): only those of stale replicas.
        """
        q = select(sessions.c.id).where(sessions.c.status == "running")
        if replica is not None:
            conds = [sessions.c.replica == replica, sessions.c.replica.is_(None)] if own else []
            if stale_after_s is not None:
                alive = select(replicas.c.id).where(replicas.c.heartbeat_at >= _iso_ago(stale_after_s))
                conds.append(sessions.c.replica.not_in(alive) & (sessions.c.replica != replica))
            if not conds:
                return []
            q = q.where(or_(*conds))
        async with self.engine.begin() as conn:
            ids = list((await conn.execute(q)).scalars())
            if ids:
                await conn.execute(
                    update(sessions)
                    .where(sessions.c.id.in_(ids))
                    .values(status="interrupted", updated_at=utcnow_iso())
                )
        return ids

    # -- replicas ---------------------------------------------------------------------------

    async def heartbeat(self, replica: str, *, url: str | None = None) -> None:
        """Record that ``replica`` is alive now (creating its row on first call)."""
        now = utcnow_iso()
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(replicas).where(replicas.c.id == replica).values(heartbeat_at=now, url=url)
            )
            if not res.rowcount:
                await conn.execute(
                    insert(replicas).values(id=replica, started_at=now, heartbeat_at=now, url=url)
                )

    async def list_replicas(self) -> list[dict[str, Any]]:
        """Every replica that ever ran on this store, with its last heartbeat."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(replicas).order_by(replicas.c.id))).all()
        return [dict(r._mapping) for r in rows]

    # -- events -----------------------------------------------------------------------------

    async def append_events(self, batch: Iterable[Event], updates: Iterable[StatusUpdate] = ()) -> None:
        """Append events (their ``seq`` already assigned), then apply ``updates``, in one transaction.

        On a SQLite file the transaction runs in one hop on the appender's thread (:mod:`.appender`).
        """
        rows = [
            {"session": e.session, "seq": e.seq, "ts": e.ts, "kind": e.kind, "data": e.data} for e in batch
        ]
        ups = list(updates)
        if not rows and not ups:
            return

        def write(conn: Connection) -> None:
            if rows:
                conn.execute(insert(events), rows)
            for u in ups:
                if u.status not in SESSION_STATUSES:
                    raise StoreError(f"unknown session status {u.status!r}")
                values: dict[str, Any] = {"status": u.status, "updated_at": utcnow_iso()}
                if u.summary is not None:
                    values["summary"] = u.summary
                conn.execute(update(sessions).where(sessions.c.id == u.session).values(**values))

        appender = self._appender_for_writes()
        if appender is not None:
            await appender.transaction(write)
            return
        async with self.engine.begin() as conn:
            await conn.run_sync(write)

    def _appender_for_writes(self) -> SQLiteAppender | None:
        if self._appender is None and not self._no_appender:
            path = sqlite_path(self.url)
            if path is None:  # PostgreSQL, or an in-memory SQLite (one connection sees it)
                self._no_appender = True
            else:
                self._appender = SQLiteAppender(path)
        return self._appender

    async def events(self, session_id: str, *, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """The session's events with ``seq > after_seq``, in order."""
        q = (
            select(events.c.seq, events.c.ts, events.c.kind, events.c.data)
            .where(events.c.session == session_id, events.c.seq > after_seq)
            .order_by(events.c.seq)
        )
        if limit:
            q = q.limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [Event(session=session_id, seq=r.seq, ts=r.ts, kind=r.kind, data=r.data) for r in rows]

    async def last_seq(self, session_id: str) -> int:
        """Highest stored ``seq`` of the session (0 when it has none)."""
        async with self.engine.connect() as conn:
            val = (
                await conn.execute(select(func.max(events.c.seq)).where(events.c.session == session_id))
            ).scalar()
        return int(val or 0)


def is_disk_full(e: BaseException) -> bool:
    """Whether ``e`` (or what caused it) says the disk or the database is full."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno == errno.ENOSPC:
            return True
        if "disk is full" in str(cur) or "No space left" in str(cur):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def reason(e: BaseException) -> str:
    """The first line of what went wrong, with a hint when the disk is full."""
    return _reason(e)


def _reason(e: BaseException) -> str:
    # SQLAlchemy's messages carry the statement and a link; the driver's first line is what matters.
    text = str(getattr(e, "orig", None) or e).splitlines()[0] if str(e) else type(e).__name__
    if is_disk_full(e):
        return f"{text} — the disk is full: free space there and start again"
    return text


def _iso_ago(seconds: float) -> str:
    # Same format as utcnow_iso, so the strings compare in time order.
    from datetime import UTC, datetime, timedelta

    t = datetime.now(UTC) - timedelta(seconds=seconds)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _check_schema(engine: AsyncEngine, url: str) -> None:
    have = await db.schema_heads(engine)
    want = db.code_heads()
    if have == want:
        return
    unknown = db.unknown_revisions(have)
    if unknown:
        raise SchemaError(
            f"the session store at {_safe(url)} has schema revision {', '.join(sorted(unknown))}, which "
            "this FazAI does not know: a newer FazAI migrated it. Upgrade this replica to the same "
            "version as the others before starting it."
        )
    at = ", ".join(sorted(have)) or "empty (never migrated)"
    raise SchemaError(
        f"the session store at {_safe(url)} is behind: its schema is {at}, this FazAI needs "
        f"{', '.join(sorted(want))}. Run once, from any replica: `fazai store migrate` (it uses "
        "[daemon] database_url; or add --store URL), then start this replica again."
    )


def _safe(url: str) -> str:
    # Never print a password from a database URL.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
