"""Coalescing of a run's ``token`` events while the writer is busy (one row and one SSE frame each).

A token that arrives while the run's previous event is still being stored could not be published
before that write ends anyway (events are published in order, after their commit). So instead of
becoming an event of its own, it is held, and the tokens that follow it are appended to it, until
that write is done: then the merged token is submitted at once (or earlier, before any other event,
which keeps the order). Latency is unchanged, the text is the same (replay reproduces it), and a
burst of tokens costs one event instead of dozens. A lone token, with the writer idle, goes at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fazai.protocol import Event

Submit = Callable[[Event], "asyncio.Future[None]"]


def _mergeable(held: Event, ev: Event, limit: int) -> bool:
    a, b = held.data, ev.data
    if not isinstance(a.get("text"), str) or not isinstance(b.get("text"), str):
        return False
    if len(a["text"]) + len(b["text"]) > limit:  # a merged token is bounded like any event
        return False
    return {k: v for k, v in a.items() if k != "text"} == {k: v for k, v in b.items() if k != "text"}


class TokenCoalescer:
    """One run's submissions to the writer, merging the tokens that arrive while it is busy.

    ``submit`` stores an event (assigns its ``seq``, queues it) and returns the writer's future.
    Every event of the run goes through :meth:`submit` (after :meth:`flush`) or :meth:`hold`.
    """

    def __init__(self, submit: Submit, *, limit: int):
        self._submit = submit
        self._limit = limit
        self._held: Event | None = None
        self._pending: asyncio.Future[None] | None = None  # the last event submitted, until stored
        self.merged = 0  # tokens folded into an earlier one (for tests and metrics)

    def submit(self, ev: Event) -> asyncio.Future[None]:
        """Store ``ev`` now, after the held token (if any)."""
        self.flush()
        fut = self._submit(ev)
        self._pending = fut
        return fut

    def hold(self, ev: Event) -> bool:
        """Hold or merge the token ``ev`` while the previous write runs; False: submit it now."""
        if ev.kind != "token" or self._pending is None or self._pending.done():
            return False
        if self._held is not None and not _mergeable(self._held, ev, self._limit):
            self.flush()  # another stream (a new iteration): that one goes, this one waits
        if self._held is None:
            self._held = ev
            assert self._pending is not None
            self._pending.add_done_callback(self._written)
        else:
            self._held.data = {**self._held.data, "text": self._held.data["text"] + ev.data["text"]}
            self.merged += 1
        return True

    def flush(self) -> None:
        """Submit the held token now (no-op without one)."""
        held, self._held = self._held, None
        if held is not None:
            self._pending = self._submit(held)

    def _written(self, fut: asyncio.Future[None]) -> None:
        # The write the held token waited for is over; if something was submitted since, the held
        # token went before it already (and a newer one waits on that write instead).
        if fut is self._pending and not fut.cancelled():
            self.flush()
