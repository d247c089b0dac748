"""The session store contract, on SQLite (WAL) and on a real PostgreSQL started from Debian's package."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from fazai.protocol import Event
from fazai.store import EventWriter, Store, StoreError
from fazai.store.db import normalize_url


def _pg_bin(name: str) -> str | None:
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on loopback (trust auth, fsync off): its asyncpg URL."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (scripts/test-setup.sh installs it)")
    root = tempfile.mkdtemp(prefix="fazai-pg-")
    data = os.path.join(root, "data")
    as_pg: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses root: run the server as the postgres user.
        shutil.chown(root, "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*as_pg, initdb, "-D", data, "-A", "trust", "-U", "postgres"], check=True, capture_output=True
    )
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    subprocess.run(
        [*as_pg, pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(root, "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_pg, pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fazai.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        # Each test gets an empty schema.
        s = await Store.open(url)
        async with s.engine.begin() as conn:
            # Every feature branch adds tables (auth, fleet…): drop the whole schema, not a list.
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await s.close()
    s = await Store.open(url)
    yield s
    await s.close()


def ev(session: str, seq: int, kind: str = "token", **data: object) -> Event:
    return Event(session=session, seq=seq, kind=kind, data=data)  # type: ignore[arg-type]


async def test_session_lifecycle(store: Store) -> None:
    a = await store.create_session("check disk", model="scripted:x")
    assert a.id.startswith("s_") and a.status == "running"
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
    a = await store.create_session("a")
    b = await store.create_session("b")
    await store.update_session(b.id, status="done")
    assert await store.mark_running_interrupted() == [a.id]
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
        await Store.open(f"postgresql://nobody:secret@127.0.0.1:{_free_port()}/x")
