"""Replay + follow of a session's log as Server-Sent Events (ids are ``seq``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from sse_starlette import ServerSentEvent

from fazai.protocol import Event
from fazai.sessions.follow import REPLAY_PAGE, follow_items
from fazai.sessions.hub import Subscriber
from fazai.sessions.manager import SessionManager

__all__ = ["REPLAY_PAGE", "control_sse", "event_sse", "follow"]


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
    """The session's events (see :func:`fazai.sessions.follow.follow_items`) as SSE messages."""
    async for item in follow_items(manager, session_id, after_seq, follow_live=follow_live, sub=sub):
        if isinstance(item, Event):
            yield event_sse(item)
        else:
            yield control_sse(*item)
