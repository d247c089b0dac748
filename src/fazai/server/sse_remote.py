"""Following a session that another replica runs: the shared store, then NATS JetStream.

The store (PostgreSQL) has every event before the bus does, so the store is the truth and the bus is
the fast path: events come from a JetStream consumer started just before the last event this client
saw; anything already sent is skipped by ``seq`` and any hole is filled from the store before the
next event goes out. With NATS down (or silent) the store is polled, so a client never misses an
event and never gets one twice, whichever replica it talks to and however often it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from sse_starlette import ServerSentEvent

from fazai.bus import BusEnd, BusIdle, BusUnavailable
from fazai.protocol import Event
from fazai.server.sse import REPLAY_PAGE, control_sse, event_sse
from fazai.sessions.manager import SessionManager

log = structlog.get_logger("fazai.daemon")

POLL_S = 0.5  # store polling while NATS is unreachable


@dataclass(slots=True)
class _Cursor:
    last: int
    ts: str | None = None


async def _replay(
    manager: SessionManager, session_id: str, cur: _Cursor, upto: int | None = None
) -> AsyncIterator[Event]:
    while True:
        page = await manager.store.events(session_id, after_seq=cur.last, limit=REPLAY_PAGE)
        for ev in page:
            if upto is not None and ev.seq > upto:
                return
            cur.last, cur.ts = ev.seq, ev.ts
            manager.followed["store"] += 1
            yield ev
        if len(page) < REPLAY_PAGE:
            return


async def follow_remote(
    manager: SessionManager, session_id: str, after_seq: int
) -> AsyncIterator[ServerSentEvent]:
    """Events with ``seq > after_seq`` until the session's run (on any replica) ends."""
    cur = _Cursor(after_seq)
    bus = manager.bus
    if after_seq > 0:
        prior = await manager.store.events(session_id, after_seq=after_seq - 1, limit=1)
        cur.ts = prior[0].ts if prior else None
    while True:
        async for ev in _replay(manager, session_id, cur):
            yield event_sse(ev)
        rec = await manager.store.get_session(session_id)
        if rec is None or rec.status != "running":
            # Whatever was stored before the status changed has been sent above, except what landed
            # between that replay and the status read: send it too.
            async for ev in _replay(manager, session_id, cur):
                yield event_sse(ev)
            status = rec.status if rec else None
            yield control_sse("end", {"session": session_id, "status": status, "last_seq": cur.last})
            return
        if bus is None:
            await asyncio.sleep(POLL_S)
            continue
        try:
            async with contextlib.aclosing(bus.follow(session_id, start_ts=cur.ts)) as items:
                async for item in items:
                    if isinstance(item, Event):
                        if item.seq <= cur.last:
                            continue  # replayed by the consumer's start margin, or sent from the store
                        if item.seq > cur.last + 1:
                            async for ev in _replay(manager, session_id, cur, upto=item.seq - 1):
                                yield event_sse(ev)
                        yield event_sse(item)
                        cur.last, cur.ts = item.seq, item.ts
                        manager.followed["bus"] += 1
                    elif isinstance(item, BusEnd | BusIdle):
                        # An end marker, or a quiet second: the store says whether the run is over (an
                        # end marker of an earlier run of this session arrives too, and changes nothing).
                        rec = await manager.store.get_session(session_id)
                        if rec is None or rec.status != "running":
                            break
                        if isinstance(item, BusIdle):
                            async for ev in _replay(manager, session_id, cur):
                                yield event_sse(ev)
        except BusUnavailable as e:
            log.warning("follow_without_bus", session=session_id, error=str(e), poll_s=POLL_S)
            await asyncio.sleep(POLL_S)
