"""Replay + follow of a session's log as Server-Sent Events (ids are ``seq``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from sse_starlette import ServerSentEvent

from fazai.protocol import Event
from fazai.sessions.hub import Lagged, RunEnded, Subscriber
from fazai.sessions.manager import SessionManager

REPLAY_PAGE = 1000


def event_sse(ev: Event) -> ServerSentEvent:
    """One stored event as an SSE message: ``id`` = seq, data = the event JSON."""
    return ServerSentEvent(data=ev.model_dump_json(), id=str(ev.seq))


def control_sse(name: str, data: dict[str, object]) -> ServerSentEvent:
    """A control message (``end``, ``lagged``): no id, so ``Last-Event-ID`` stays on the last event."""
    return ServerSentEvent(data=json.dumps(data), event=name)


async def follow(
    manager: SessionManager,
    session_id: str,
    after_seq: int,
    *,
    follow_live: bool = True,
    sub: Subscriber | None = None,
) -> AsyncIterator[ServerSentEvent]:
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
                yield event_sse(ev)
                last = ev.seq
            if len(page) < REPLAY_PAGE:
                break
        if sub is None or not running:
            rec = await manager.store.get_session(session_id)
            yield control_sse(
                "end", {"session": session_id, "status": rec.status if rec else None, "last_seq": last}
            )
            return
        while True:
            item = await sub.get()
            if isinstance(item, Event):
                if item.seq <= last:
                    continue
                yield event_sse(item)
                last = item.seq
            elif isinstance(item, Lagged):
                manager.metrics.sse_lagged.inc()
                yield control_sse(
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
                yield control_sse("end", {"session": session_id, "status": item.status, "last_seq": last})
                return
    finally:
        if sub is not None:
            hub.unsubscribe(sub)
