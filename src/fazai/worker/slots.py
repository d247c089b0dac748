"""Slot scheduling: which KV-cache slot serves the next generation, and who waits.

A session keeps affinity to the slot that holds its state; when every slot is busy, requests wait
in FIFO order. A slot remembers which session's state it holds so the server knows when it must
save the previous owner before handing the slot over.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass

PREFIX_OWNER = "\x00prefix"  # a slot holding only the shared system prefix


@dataclass(slots=True)
class SlotState:
    """One llama.cpp slot as seen by the scheduler."""

    index: int
    busy: bool = False
    owner: str | None = None  # session id whose state the slot holds, or PREFIX_OWNER
    last_used: int = 0


class SlotPool:
    """FIFO-fair allocation of ``n`` slots with session affinity."""

    def __init__(self, n: int):
        self.slots = [SlotState(i) for i in range(n)]
        self._waiters: deque[tuple[str, asyncio.Future[int]]] = deque()
        self._clock = itertools.count(1)

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return sum(1 for _, f in self._waiters if not f.done())

    @property
    def busy(self) -> int:
        """Slots running a generation."""
        return sum(1 for s in self.slots if s.busy)

    def _pick(self, session_id: str) -> SlotState | None:
        free = [s for s in self.slots if not s.busy]
        if not free:
            return None
        for s in free:
            if s.owner == session_id:
                return s
        # Prefer slots nobody will miss (empty, or just the prefix), then the least recently used.
        return min(free, key=lambda s: (s.owner not in (None, PREFIX_OWNER), s.last_used))

    def _dispatch(self) -> None:
        while self._waiters:
            session_id, fut = self._waiters[0]
            if fut.done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            slot = self._pick(session_id)
            if slot is None:
                return
            self._waiters.popleft()
            slot.busy = True
            slot.last_used = next(self._clock)
            fut.set_result(slot.index)

    async def acquire(self, session_id: str) -> int:
        """Wait for a slot (FIFO); cancelling the wait leaves the queue consistent."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append((session_id, fut))
        self._dispatch()
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(fut.result())
            raise

    def release(self, index: int) -> None:
        """Give a slot back and wake the next waiter."""
        self.slots[index].busy = False
        self._dispatch()

    def forget(self, session_id: str) -> None:
        """A closed session no longer owns any slot's content."""
        for s in self.slots:
            if s.owner == session_id:
                s.owner = None
