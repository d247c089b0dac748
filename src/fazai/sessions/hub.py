"""In-process fan-out of committed events to live followers (SSE clients, the embedded CLI).

Each follower has its own bounded queue. Publishing never waits: a follower whose queue is full is
dropped with a final :class:`Lagged` marker (it reconnects with ``Last-Event-ID`` and replays from the
store), so a slow client can never stall a session.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

from fazai.protocol import Event


@dataclass(frozen=True, slots=True)
class Lagged:
    """The follower fell too far behind and was dropped after ``last_seq``."""

    last_seq: int


@dataclass(frozen=True, slots=True)
class RunEnded:
    """The session's current run finished with ``status``; no more events until the next run."""

    status: str


Item = Event | Lagged | RunEnded


class Subscriber:
    """One follower of one session."""

    def __init__(self, session_id: str, limit: int):
        self.session_id = session_id
        self.limit = limit
        # Unbounded at the asyncio level so the final marker always fits; the hub enforces `limit`.
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self.last_queued = 0
        self.dropped = False

    async def get(self) -> Item:
        """The next event or marker."""
        return await self.queue.get()


class Hub:
    """Session id → followers."""

    def __init__(self, queue_limit: int = 10000):
        self.queue_limit = queue_limit
        self._subs: dict[str, set[Subscriber]] = defaultdict(set)

    def subscribe(self, session_id: str, limit: int | None = None) -> Subscriber:
        """Follow ``session_id`` from now on (events published after this call)."""
        sub = Subscriber(session_id, limit or self.queue_limit)
        self._subs[session_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Stop following (idempotent)."""
        subs = self._subs.get(sub.session_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                self._subs.pop(sub.session_id, None)

    def followers(self, session_id: str) -> int:
        """How many followers the session has."""
        return len(self._subs.get(session_id, ()))

    def publish(self, events: list[Event]) -> None:
        """Hand committed events to every follower of their session; never blocks."""
        for ev in events:
            for sub in list(self._subs.get(ev.session, ())):
                if sub.queue.qsize() >= sub.limit:
                    sub.dropped = True
                    sub.queue.put_nowait(Lagged(sub.last_queued))
                    self.unsubscribe(sub)
                    continue
                sub.queue.put_nowait(ev)
                sub.last_queued = ev.seq

    def end_run(self, session_id: str, status: str) -> None:
        """Tell the session's followers that its run finished."""
        for sub in list(self._subs.get(session_id, ())):
            sub.queue.put_nowait(RunEnded(status))
