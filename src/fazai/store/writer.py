"""Group-committing event writer: events are stored, then published, in order.

One writer per store (the store is single-writer). Whatever has queued up while a commit runs goes
into the next transaction, so a burst of tokens costs one commit instead of hundreds, while a lone
event is committed at once (no timer, no added latency). While the database is unreachable the batch
is retried with backoff (the run waits at its next durable point); nothing queued is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from sqlalchemy.exc import IntegrityError

from fazai.protocol import Event
from fazai.store.retry import retrying
from fazai.store.store import Store

log = structlog.get_logger("fazai.store")

Publish = Callable[[list[Event]], None]
MAX_BATCH = 1000


class EventWriter:
    """Stores events in submission order and hands each committed batch to ``publish``."""

    def __init__(self, store: Store, publish: Publish, *, retry_max_s: float = 5.0):
        self._store = store
        self._publish = publish
        self._retry_max_s = retry_max_s
        self._queue: asyncio.Queue[tuple[Event, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the writer task (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fazai-event-writer")

    async def stop(self, timeout_s: float | None = 30.0) -> None:
        """Write what is queued (waiting at most ``timeout_s`` for an unreachable database), then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            log.error(
                "events_not_written",
                count=self._queue.qsize() + 1,
                message="the database stayed unreachable at shutdown; these events are lost",
            )
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def submit(self, event: Event) -> asyncio.Future[None]:
        """Queue ``event`` (its ``seq`` assigned); the future resolves once it is stored and published."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((event, fut))
        return fut

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            events = [e for e, _ in batch]
            try:
                await self._write(events)
            except Exception as e:  # the session runner sees it on the awaited future
                log.error("event_write_failed", error=str(e), count=len(events), session=events[0].session)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                        # Token futures are not awaited; mark retrieved so asyncio stays quiet.
                        fut.exception()
            else:
                try:
                    self._publish(events)
                except Exception as e:  # a broken subscriber never loses stored events
                    log.error("event_publish_failed", error=str(e))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, events: list[Event]) -> None:
        attempts = 0

        async def once() -> None:
            nonlocal attempts
            attempts += 1
            try:
                await self._store.append_events(events)
            except IntegrityError:
                # A retried batch whose first commit went through but whose answer was lost in the
                # outage is already stored: that is success, not a duplicate.
                if attempts > 1 and await self._stored(events):
                    return
                raise

        await retrying(once, what="events", max_s=self._retry_max_s)

    async def _stored(self, events: list[Event]) -> bool:
        top: dict[str, int] = {}
        for e in events:
            top[e.session] = max(top.get(e.session, 0), e.seq)
        for sid, seq in top.items():
            if await self._store.last_seq(sid) < seq:
                return False
        return True
