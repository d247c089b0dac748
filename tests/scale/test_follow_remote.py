"""The cross-replica follower on its own: real PostgreSQL, real NATS, events published with holes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fazai.bus import EventBus
from fazai.config import BusSettings, Settings
from fazai.protocol import Event
from fazai.server.sse_remote import follow_remote
from fazai.sessions.manager import SessionManager
from fazai.store import Store
from services import Nats, create_database

pytestmark = pytest.mark.postgres


async def test_holes_on_the_bus_are_filled_from_the_store(
    pg_url: str, nats_server: Nats, tmp_path: Path
) -> None:
    url = await asyncio.to_thread(create_database, pg_url, "follow_remote")
    store = await Store.open(url, migrate=True)
    settings = Settings.model_validate({"paths": {"state_dir": str(tmp_path)}, "daemon": {"replica_id": "b"}})
    bus = EventBus(BusSettings(url=nats_server.url), "a")
    bus.start()
    follower = SessionManager(settings, store, bus=bus)  # replica B: reads, runs nothing
    try:
        rec = await store.create_session("g", replica="a", status="running")
        evs = [Event(session=rec.id, seq=i, kind="token", data={"text": str(i)}) for i in range(1, 31)]  # type: ignore[arg-type]
        await store.append_events(evs[:10])
        got: list[int] = []
        end: dict[str, object] = {}

        async def read() -> None:
            async for msg in follow_remote(follower, rec.id, 3):
                if msg.event == "end":
                    end.update(json.loads(msg.data))
                    return
                got.append(json.loads(msg.data)["seq"])

        reader = asyncio.create_task(read())
        assert await bus.wait_connected(20)
        await asyncio.sleep(0.5)
        # Replica A stores 11..30 but only 11, 12, 20 and 25..30 reach the bus (as if the rest were
        # lost in an outage): the follower must send 13..19 and 21..24 from the store, in place.
        await store.append_events(evs[10:])
        bus.publish([evs[i - 1] for i in (11, 12, 20, *range(25, 31))])
        await asyncio.sleep(0.3)
        await store.update_session(rec.id, status="done", summary="ok")
        bus.publish_end(rec.id, "done", 30)
        await asyncio.wait_for(reader, 30)
        assert got == list(range(4, 31))
        assert end["status"] == "done" and end["last_seq"] == 30
        # 4..10 replayed, and at least the 11 hole events, came from the store.
        assert follower.followed["store"] >= 7 + 11
    finally:
        await bus.stop()
        await store.close()
