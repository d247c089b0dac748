"""PostgreSQL down at start or restarted mid-run: the replica waits, says so, and loses no event."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon_harness import REPO, Daemon, write_config
from fazai.protocol import Event
from fazai.store import EventWriter, Store
from services import Postgres, create_database, free_port

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def _module_pg() -> Iterator[Postgres]:
    try:
        pg = Postgres()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    try:
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def own_pg(_module_pg: Postgres) -> Postgres:
    """A cluster of this module's own (tests stop and start it), stopped when a test begins."""
    _module_pg.stop()
    return _module_pg


async def test_writer_waits_out_a_postgres_restart(own_pg: Postgres) -> None:
    own_pg.start()
    store = await Store.open(own_pg.url, migrate=True)
    published: list[int] = []
    w = EventWriter(store, lambda evs: published.extend(e.seq for e in evs), retry_max_s=0.3)
    w.start()
    try:
        s = await store.create_session("through an outage")

        def ev(seq: int) -> Event:
            return Event(session=s.id, seq=seq, kind="token", data={"text": str(seq)})  # type: ignore[arg-type]

        await asyncio.gather(*(w.submit(ev(i)) for i in range(1, 21)))
        own_pg.stop()  # immediate: the pooled connections die with it
        futs = [w.submit(ev(i)) for i in range(21, 41)]
        await asyncio.sleep(1.5)
        assert not any(f.done() for f in futs), "events were given up while the database was down"
        own_pg.start()
        await asyncio.wait_for(asyncio.gather(*futs), 30)
        assert [e.seq for e in await store.events(s.id)] == list(range(1, 41))
        assert published == list(range(1, 41))
    finally:
        await w.stop(timeout_s=5)
        await store.close()


@pytest.mark.slow  # a real fazaid waiting for a real PostgreSQL: ~10-25 s on 2 busy cores
def test_replica_waits_for_postgres_at_start(own_pg: Postgres, tmp_path: Path) -> None:
    d = Daemon(
        tmp_path / "r",
        ["unused"],
        f'database_url = "{own_pg.url}"\nmigrate = "auto"\nreplica_id = "r1"',
        port=free_port(),
    )
    started: dict[str, object] = {}
    t = threading.Thread(target=lambda: started.update(d=d.start(timeout=60)))
    t.start()
    try:
        deadline = 30.0
        t0 = time.monotonic()
        while not any('"store_unreachable' in line for line in d.lines):
            assert time.monotonic() - t0 < deadline, "".join(d.lines[-20:])
            time.sleep(0.1)
        assert not started, "the replica claimed to be ready without its database"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{d.port}/healthz", timeout=1)
        own_pg.start()
        t.join(60)
        assert started.get("d") is d
        with d.client() as c:
            h = c.get("/healthz").json()
            assert h["ok"] and h["replica"] == "r1"
            assert c.post("/agent/sessions", json={"goal": "stored in postgres"}).status_code == 201
    finally:
        t.join(60)
        d.stop()


def test_replica_on_a_schema_behind_refuses_with_the_command(pg_url: str, tmp_path: Path) -> None:
    url = create_database(pg_url, f"behind_{os.getpid()}")
    cfg = write_config(tmp_path / "old", ["unused"], f'database_url = "{url}"\nreplica_id = "r1"')
    out = subprocess.run(
        [sys.executable, "-m", "fazai.server", "--port", str(free_port())],
        env={**os.environ, "FAZAI_CONFIG": str(cfg)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr[-2000:]
    assert "is behind: its schema is empty" in out.stderr and "fazai store migrate" in out.stderr
