"""The session store contract, on SQLite (WAL) and on a real PostgreSQL started from Debian's package."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from fazai.protocol import Event
from fazai.store import EventWriter, SchemaError, Store, StoreError
from fazai.store.db import create_engine, normalize_url
from services import free_port


async def reset_pg(url: str) -> None:
    """An empty database: every table of every migration branch goes."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fazai.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        # Each test gets an empty schema.
        await reset_pg(url)
    s = await Store.open(url, migrate=True)
    yield s
    await s.close()


def ev(session: str, seq: int, kind: str = "token", **data: object) -> Event:
    return Event(session=session, seq=seq, kind=kind, data=data)  # type: ignore[arg-type]


async def test_session_lifecycle(store: Store) -> None:
    a = await store.create_session("check disk", model="scripted:x")
    # A session is `created` until its run starts: never listed as running when it never ran.
    assert a.id.startswith("s_") and a.status == "created"
    await store.update_session(a.id, status="running")
    await store.update_session(a.id, status="done", summary="42% used")
    got = await store.get_session(a.id)
    assert got is not None and (got.status, got.summary, got.goal) == ("done", "42% used", "check disk")
    assert await store.get_session("s_missing") is None
    with pytest.raises(StoreError, match="unknown session status"):
        await store.update_session(a.id, status="exploded")


async def test_events_ordered_and_unique(store: Store) -> None:
    s = await store.create_session("g")
    await store.append_events([ev(s.id, i, text=f"t{i}") for i in range(1, 6)])
    await store.append_events([ev(s.id, 6, "done", answer="ok", nested={"a": [1, 2]})])
    all_ = await store.events(s.id)
    assert [e.seq for e in all_] == [1, 2, 3, 4, 5, 6]
    assert all_[-1].data == {"answer": "ok", "nested": {"a": [1, 2]}}
    assert [e.seq for e in await store.events(s.id, after_seq=4)] == [5, 6]
    assert await store.last_seq(s.id) == 6
    with pytest.raises(Exception):  # noqa: B017 - driver-specific IntegrityError
        await store.append_events([ev(s.id, 3)])
    # The failed batch added nothing.
    assert await store.last_seq(s.id) == 6 and len(await store.events(s.id)) == 6


async def test_running_sessions_become_interrupted(store: Store) -> None:
    a = await store.create_session("a", status="running")
    b = await store.create_session("b", status="running")
    never_ran = await store.create_session("c")
    await store.update_session(b.id, status="done")
    assert await store.mark_running_interrupted() == [a.id]
    assert (await store.get_session(never_ran.id)).status == "created"  # type: ignore[union-attr]
    assert (await store.get_session(a.id)).status == "interrupted"  # type: ignore[union-attr]
    assert (await store.get_session(b.id)).status == "done"  # type: ignore[union-attr]
    listed = await store.list_sessions(status="interrupted")
    assert [r.id for r in listed] == [a.id]


async def test_writer_stores_before_publishing_in_order(store: Store) -> None:
    s = await store.create_session("g")
    seen: list[tuple[int, int]] = []

    async def check(events: list[Event]) -> None:
        # What is published is already readable from the store.
        stored = await store.last_seq(s.id)
        seen.extend((e.seq, stored) for e in events)

    pending: list[asyncio.Task[None]] = []
    w = EventWriter(store, lambda evs: pending.append(asyncio.ensure_future(check(evs))))
    w.start()
    futs = [w.submit(ev(s.id, i, text="x")) for i in range(1, 201)]
    await asyncio.gather(*futs)
    await asyncio.gather(*pending)
    await w.stop()
    assert [q for q, _ in seen] == list(range(1, 201))
    assert all(stored >= q for q, stored in seen)


async def test_writer_commits_non_urgent_events_with_the_next_urgent_one(store: Store) -> None:
    """Output and tokens (nothing waits for them) share the commit of the action that follows; a
    lone one is still stored, after at most the linger; an urgent one never waits."""
    s = await store.create_session("g")
    published: list[int] = []
    w = EventWriter(
        store, lambda evs: published.extend(e.seq for e in evs), urgent_kinds=frozenset({"action"})
    )
    w.start()
    try:
        futs = [w.submit(ev(s.id, 1, "exec_end")), w.submit(ev(s.id, 2, "observe"))]
        await asyncio.sleep(0)  # the writer takes them and lingers
        futs.append(w.submit(ev(s.id, 3, "action")))
        await asyncio.gather(*futs)
        assert w.commits == 1 and published == [1, 2, 3]
        # A lone non-urgent event goes after the linger (nothing else comes).
        t = asyncio.get_running_loop().time()
        await w.submit(ev(s.id, 4, "token", text="x"))
        assert w.commits == 2 and asyncio.get_running_loop().time() - t < 1.0
        # An urgent one at once, without lingering; hurry() makes a queued batch urgent.
        w.linger_s = 30.0
        await asyncio.wait_for(w.submit(ev(s.id, 5, "action")), 5)
        fut = w.submit(ev(s.id, 6, "token", text="y"))
        await asyncio.sleep(0)
        w.hurry()
        await asyncio.wait_for(fut, 5)
        assert [e.seq for e in await store.events(s.id)] == [1, 2, 3, 4, 5, 6]
    finally:
        await w.stop()


async def test_sqlite_appends_take_one_thread_and_keep_the_rules(tmp_path: Path) -> None:
    """A SQLite file's appends run on the appender's thread: visible to the async engine at once,
    a duplicate seq is the same IntegrityError (the writer's retry relies on it), an unknown status
    rolls the whole transaction back."""
    from sqlalchemy.exc import IntegrityError

    from fazai.store.store import StatusUpdate

    store = await Store.open(f"sqlite:///{tmp_path / 'fazai.db'}", migrate=True)
    try:
        s = await store.create_session("g")
        await store.append_events([ev(s.id, 1), ev(s.id, 2)], [StatusUpdate(s.id, "running", None)])
        assert store._appender is not None  # the one-hop path was taken
        assert [e.seq for e in await store.events(s.id)] == [1, 2]
        assert (await store.get_session(s.id)).status == "running"  # type: ignore[union-attr]
        with pytest.raises(IntegrityError):
            await store.append_events([ev(s.id, 2)])
        with pytest.raises(StoreError, match="unknown session status"):
            await store.append_events([ev(s.id, 3)], [StatusUpdate(s.id, "exploded", None)])
        assert await store.last_seq(s.id) == 2
    finally:
        await store.close()
    assert store._appender is None


async def test_migrations_are_idempotent(store: Store) -> None:
    again = await Store.open(store.url)
    await again.close()
    rec = await store.create_session("still works")
    assert (await store.get_session(rec.id)) is not None


def test_url_normalization() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalize_url("sqlite:////x/y.db") == "sqlite+aiosqlite:////x/y.db"
    assert normalize_url("sqlite+aiosqlite:///a") == "sqlite+aiosqlite:///a"


async def test_bad_url_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the session store"):
        await Store.open(f"postgresql://nobody:secret@127.0.0.1:{free_port()}/x")


async def test_replicas_interrupt_only_their_own_runs(store: Store) -> None:
    mine = await store.create_session("mine", replica="r1", status="running")
    other = await store.create_session("other", replica="r2", status="running")
    dead = await store.create_session("dead", replica="r3", status="running")
    legacy = await store.create_session("before replicas", status="running")
    await store.heartbeat("r1")
    await store.heartbeat("r2")
    # r3 never beat (or stopped long ago): its runs are orphans; r2's live run stays running.
    got = await store.mark_running_interrupted("r1", stale_after_s=30)
    assert sorted(got) == sorted([mine.id, dead.id, legacy.id])
    assert (await store.get_session(other.id)).status == "running"  # type: ignore[union-attr]
    assert [r["id"] for r in await store.list_replicas()] == ["r1", "r2"]
    await store.heartbeat("r1", url="http://10.0.0.1:3120")
    assert (await store.list_replicas())[0]["url"] == "http://10.0.0.1:3120"
    assert (await store.get_session(mine.id)).replica == "r1"  # type: ignore[union-attr]


@pytest.mark.postgres
async def test_schema_behind_or_ahead_refuses_with_what_to_run(pg_url: str) -> None:
    await reset_pg(pg_url)
    # An empty (never migrated) database: PostgreSQL is checked, not migrated, by default.
    with pytest.raises(SchemaError, match=r"is behind: its schema is empty.*fazai store migrate"):
        await Store.open(pg_url)
    s = await Store.open(pg_url, migrate=True)
    async with s.engine.begin() as conn:
        # Several branches start from 0001 (one head each): back to 0001 is one row.
        await conn.execute(text("DELETE FROM alembic_version"))
        await conn.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
    await s.close()
    with pytest.raises(SchemaError, match=r"is behind: its schema is 0001, this FazAI needs .*0002_scale"):
        await Store.open(pg_url)
    await reset_pg(pg_url)
    s = await Store.open(pg_url, migrate=True)
    async with s.engine.begin() as conn:
        await conn.execute(text("INSERT INTO alembic_version VALUES ('9999_from_the_future')"))
    await s.close()
    with pytest.raises(SchemaError, match=r"9999_from_the_future, which this FazAI does not know"):
        await Store.open(pg_url)
    await reset_pg(pg_url)


async def test_migrate_command_then_check(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(SchemaError, match="fazai store migrate"):
        await Store.open(url, migrate=False)
    s = await Store.open(url, migrate=True)
    await s.close()
    s = await Store.open(url, migrate=False)
    await s.close()
