"""``agent_routes`` and ``agent_dispatch`` (migration 0006) on SQLite and a real PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from fazai.fleet.relay import RouteStore
from fazai.store import Store
from fazai.store.schema import replicas
from services import create_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fazai.db'}"
    return create_database(request.getfixturevalue("pg_url"), f"routes_{os.getpid()}")  # fresh, empty


@pytest.fixture
async def routes(url: str) -> RouteStore:
    store = await Store.open(url, migrate=True)
    for r in ("a", "b", "dead"):
        await store.heartbeat(r)
    # "dead" stopped beating a minute ago: what it claims to hold is ignored.
    async with store.engine.begin() as conn:
        await conn.execute(
            update(replicas).where(replicas.c.id == "dead").values(heartbeat_at="2000-01-01T00:00:00.000Z")
        )
    yield RouteStore(store.engine)
    await store.close()


async def test_attach_reattach_detach_and_stale_replicas(routes: RouteStore) -> None:
    await routes.attach("n1", "a")
    await routes.attach("n2", "dead")
    assert await routes.holders(["n1", "n2", "n3"], stale_s=16) == {"n1": "a"}
    await routes.attach("n1", "b")  # the agent reconnected to b: one row, overwritten
    assert await routes.holders(None, stale_s=16) == {"n1": "b"}
    await routes.detach("n1", "a")  # a's late detach does not remove b's route
    assert await routes.holders(None, stale_s=16) == {"n1": "b"}
    await routes.detach("n1", "b")
    assert await routes.holders(None, stale_s=16) == {}
    await routes.attach("n2", "a")  # the stale replica's row was overwritten by a live one
    await routes.attach("n3", "a")
    assert await routes.holders(None, stale_s=16) == {"n2": "a", "n3": "a"}
    assert await routes.forget_replica("a") == 2  # a restarted: it holds nothing yet
    assert await routes.holders(None, stale_s=16) == {}


async def test_dispatch_row_is_unique_per_node_and_action(routes: RouteStore) -> None:
    await routes.dispatched([("n1", "a_1"), ("n2", "a_2")], "a")
    assert await routes.origins(["a_1", "a_2", "a_x"]) == {"a_1": "a", "a_2": "a"}
    # The id is fixed once written: the same action cannot be dispatched a second time.
    with pytest.raises(IntegrityError):
        await routes.dispatched([("n1", "a_1")], "b")
    assert await routes.origins(["a_1"]) == {"a_1": "a"}
