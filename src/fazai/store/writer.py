"""Group-committing event writer: events are stored, then published, in order.

One writer per store (the store is single-writer). Whatever has queued up while a commit runs goes
into the next transaction, so a burst of tokens costs one commit instead of hundreds. An *urgent*
event (one a run waits for before it goes on: an action before its command runs, a question, the
end of a run, a status) is committed at once. A batch of only non-urgent events (tokens, output, an
observation) waits up to ``linger_s`` (2 ms) for more, or until an urgent one arrives: in the agent
loop a command's end, its observation and the next turn's tokens then share the commit of the next
action, one commit an iteration instead of two (``bench/bench_agent.py``). The wait only delays
when those events are stored and published, never what a run does: nothing waits on them.

A failed write loses nothing: the batch stays at the head of the queue and is written again (after
giving up the store's disk reserve, when it has one) until it passes, and ``on_failure`` is told
which sessions were writing, so their runs stop instead of acting unrecorded. While a failure is
unresolved, or the reserve could not be made again, :attr:`EventWriter.healthy` is false and new
runs are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from sqlalchemy.exc import IntegrityError

from fazai.protocol import Event
from fazai.store.redact import Redactor
from fazai.store.retry import is_transient
from fazai.store.store import StatusUpdate, Store
from fazai.store.store import reason as _reason

log = structlog.get_logger("fazai.store")

Publish = Callable[[list[Event]], None]
OnFailure = Callable[[set[str], str], None]
MAX_BATCH = 1000
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0
STOP_WAIT_S = 5.0
LINGER_S = 0.002

_Item = Event | StatusUpdate


class EventWriter:
    """Stores events in submission order and hands each committed batch to ``publish``."""

    def __init__(
        self,
        store: Store,
        publish: Publish,
        *,
        redactor: Redactor | None = None,
        on_failure: OnFailure | None = None,
        retry_max_s: float = RETRY_MAX_S,
        urgent_kinds: frozenset[str] = frozenset(),
        linger_s: float = LINGER_S,
    ):
        self._store = store
        self.retry_max_s = retry_max_s  # the longest wait between two tries of a failing write
        self._publish = publish
        # Known secret values are replaced before an event is stored or published (see redact.py).
        self.redactor = redactor or Redactor()
        self.on_failure = on_failure
        self._queue: asyncio.Queue[tuple[_Item, asyncio.Future[None]]] = asyncio.Queue()
        self.urgent_kinds = urgent_kinds  # kinds committed at once (see the module docstring)
        self.linger_s = linger_s  # 0: every batch at once
        self._urgent = asyncio.Event()  # set when an urgent item is queued
        self.commits = 0  # transactions written (for tests and the benchmark)
        self._task: asyncio.Task[None] | None = None
        self.failure: str | None = None  # why the batch at the head cannot be written, while it cannot
        self.last_failure: str | None = None

    @property
    def healthy(self) -> bool:
        """False while a write fails, or while the disk reserve given up for one is not back."""
        if self.failure is not None:
            return False
        reserve = self._store.reserve
        return reserve is None or reserve.ensure(min_interval_s=1.0)

    def start(self) -> None:
        """Start the writer task (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fazai-event-writer")

    async def stop(self, timeout_s: float = STOP_WAIT_S) -> None:
        """Write what is queued (waiting at most ``timeout_s`` while writes fail), then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s if self.failure else None)
        except TimeoutError:
            log.error("events_not_written_at_stop", pending=self._queue.qsize(), error=self.failure)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def submit(self, event: Event, *, urgent: bool | None = None) -> asyncio.Future[None]:
        """Queue ``event`` (its ``seq`` assigned); the future resolves once it is stored and published.

        ``urgent``: commit without lingering (default: whether its kind is in ``urgent_kinds``).
        """
        return self._put(event, event.kind in self.urgent_kinds if urgent is None else urgent)

    def hurry(self) -> None:
        """Something now waits for what is queued: commit it without lingering."""
        self._urgent.set()

    def submit_status(self, session: str, status: str, summary: str | None = None) -> asyncio.Future[None]:
        """Queue a session's final status: written after the events before it, retried like them."""
        return self._put(StatusUpdate(session, status, summary), True)

    def _put(self, item: _Item, urgent: bool = True) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        if urgent:
            self._urgent.set()
        return fut

    def _drain(self, batch: list[tuple[_Item, asyncio.Future[None]]]) -> None:
        while len(batch) < MAX_BATCH and not self._queue.empty():
            batch.append(self._queue.get_nowait())

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            self._drain(batch)
            if self.linger_s > 0 and not self._urgent.is_set() and len(batch) < MAX_BATCH:
                # Only events nothing waits for: give the run a moment to add the one it will wait for.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), self.linger_s)
                self._drain(batch)
            self._urgent.clear()
            if not self._queue.empty():
                self._urgent.set()  # what is left (past MAX_BATCH) may hold an urgent item: no lingering
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[tuple[_Item, asyncio.Future[None]]]) -> None:
        events = [self.redactor.event(i) for i, _ in batch if isinstance(i, Event)]
        updates = [i for i, _ in batch if isinstance(i, StatusUpdate)]
        delay = RETRY_FIRST_S
        attempts = 0
        while True:
            attempts += 1
            try:
                await self._store.append_events(events, updates)
                self.commits += 1
                break
            except asyncio.CancelledError:
                raise
            except IntegrityError:
                # A retried batch whose first commit went through but whose answer was lost in an
                # outage is already stored: that is success, not a duplicate.
                if attempts > 1 and await self._stored(events):
                    break
                raise
            except Exception as e:
                reason = _reason(e)
                first = self.failure is None
                self.failure = self.last_failure = reason
                sessions = {e.session for e in events} | {u.session for u in updates}
                log.error("event_write_failed", error=reason, count=len(events), sessions=sorted(sessions))
                # A PostgreSQL restart or a network cut is ridden out: the runs wait at their next
                # durable point. Anything else (a full disk) stops the runs that were writing.
                ride_out = self._store.engine.dialect.name == "postgresql" and is_transient(e)
                if first and not ride_out and self.on_failure is not None:
                    try:
                        self.on_failure(sessions, reason)
                    except Exception as cb_err:  # never let a callback end the writer
                        log.error("event_write_failure_callback_failed", error=str(cb_err))
                reserve = self._store.reserve
                if reserve is not None and reserve.release():
                    continue  # room again: write at once
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
        if self.failure is not None:
            log.warning("event_write_recovered", error=self.failure, count=len(events), attempts=attempts)
            self.failure = None
        try:
            self._publish(events)
        except Exception as e:  # a broken subscriber never loses stored events
            log.error("event_publish_failed", error=str(e))
        for _, fut in batch:
            if not fut.done():
                fut.set_result(None)

    async def _stored(self, events: list[Event]) -> bool:
        top: dict[str, int] = {}
        for e in events:
            top[e.session] = max(top.get(e.session, 0), e.seq)
        for sid, seq in top.items():
            if await self._store.last_seq(sid) < seq:
                return False
        return True
