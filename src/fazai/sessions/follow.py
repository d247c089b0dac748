"""Replay + follow of one session's log, for every live view (the API's SSE, the web console).

Yields stored :class:`Event` objects, then live ones until the run ends, and finally one control
tuple: ``("end", {...})`` or ``("lagged", {...})`` (the follower fell behind and must reconnect).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fazai.protocol import Event
from fazai.sessions.hub import Lagged, RunEnded, Subscriber
from fazai.sessions.manager import SessionManager

REPLAY_PAGE = 1000

Item = Event | tuple[str, dict[str, Any]]


async def follow_items(
    manager: SessionManager,
    session_id: str,
    after_seq: int,
    *,
    follow_live: bool = True,
    sub: Subscriber | None = None,
) -> AsyncIterator[Item]:
    """Events with ``seq > after_seq`` from the store, then live ones until the run ends.

    The follower subscribes before reading the store, so nothing falls between the two; events seen
    in both are sent once (by ``seq``). A ``sub`` made before a run was started follows that run.
    """
    hub = manager.hub
    running = sub is not None
    if sub is None and follow_live:
        sub = hub.subscribe(session_id)
        running = session_id in manager.runs
    last = after_seq
    try:
        while True:
            page = await manager.store.events(session_id, after_seq=last, limit=REPLAY_PAGE)
            for ev in page:
                yield ev
                last = ev.seq
            if len(page) < REPLAY_PAGE:
                break
        if sub is None or not running:
            rec = await manager.store.get_session(session_id)
            yield ("end", {"session": session_id, "status": rec.status if rec else None, "last_seq": last})
            return
        while True:
            item = await sub.get()
            if isinstance(item, Event):
                if item.seq <= last:
                    continue
                yield item
                last = item.seq
            elif isinstance(item, Lagged):
                manager.metrics.sse_lagged.inc()
                yield (
                    "lagged",
                    {
                        "session": session_id,
                        "last_seq": last,
                        "message": "this client fell too far behind and is disconnected; "
                        "reconnect with Last-Event-ID to replay what it missed",
                    },
                )
                return
            elif isinstance(item, RunEnded):
                yield ("end", {"session": session_id, "status": item.status, "last_seq": last})
                return
    finally:
        if sub is not None:
            hub.unsubscribe(sub)
