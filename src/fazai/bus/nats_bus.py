"""Session events over NATS JetStream: an ordered outbox that survives outages, and followers.

Publishing never blocks a run: committed events go into an in-memory outbox that one task publishes
in order, each with ``Nats-Msg-Id = <session>:<seq>`` so a retry after a lost acknowledgement is
dropped by JetStream's duplicate window instead of stored twice. While NATS is down the outbox
grows and the task retries with backoff; nothing is dropped (the store has every event anyway).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import nats
import nats.errors
import nats.js.errors
import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from fazai.config import BusSettings
from fazai.protocol import Event

log = structlog.get_logger("fazai.bus")

END_HEADER = "Fazai-End"
PUBLISH_BATCH = 256
# How far before the last event a follower's consumer starts: covers clock skew between the replica
# that stamped the event and the NATS server that stamped its arrival. Replayed extras are skipped.
START_MARGIN_S = 5.0
DUPLICATE_WINDOW_S = 120.0
UNREACHABLE_LOG_EVERY_S = 5.0
_UNREACHABLE = (
    "NATS does not answer: sessions run and are stored; their events reach other replicas once it "
    "is back (retrying with backoff)"
)


class BusUnavailable(Exception):
    """NATS is not reachable now; the caller falls back to the store and tries again later."""


@dataclass(frozen=True, slots=True)
class BusEnd:
    """A run of the session ended with ``status`` after event ``last_seq``."""

    status: str
    last_seq: int


@dataclass(frozen=True, slots=True)
class BusIdle:
    """Nothing arrived for a while (the follower checks the store meanwhile)."""


@dataclass(slots=True)
class _Out:
    subject: str
    payload: bytes
    msg_id: str
    headers: dict[str, str]


class EventBus:
    """One replica's connection to NATS JetStream."""

    def __init__(self, settings: BusSettings, replica: str):
        self.settings = settings
        self.replica = replica
        self.nc: Any = None
        self.js: Any = None
        self._outbox: collections.deque[_Out] = collections.deque()
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._last_warning = -1e9
        self.published = 0
        self._control: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
        # Other core-NATS subscriptions (the fleet relay's), made once connected.
        self._subs: list[tuple[str, Callable[[Any], Awaitable[None]]]] = []
        self._subs_live = False

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the connection is up and the stream exists."""
        return self._connected.is_set() and self.nc is not None and self.nc.is_connected

    @property
    def pending(self) -> int:
        """Events waiting in the outbox."""
        return len(self._outbox)

    def start(self) -> None:
        """Connect in the background (retrying with backoff) and start publishing."""
        self._tasks = [
            asyncio.create_task(self._connect_loop(), name="fazai-bus-connect"),
            asyncio.create_task(self._publish_loop(), name="fazai-bus-publish"),
        ]

    async def stop(self, flush_s: float = 5.0) -> None:
        """Publish what is queued (waiting at most ``flush_s``), then close."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + flush_s
        # Polled: the outbox drains from the publish task, and the connection may drop meanwhile.
        while self._outbox and self.connected and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if self._outbox:
            log.warning("bus_unpublished_at_stop", count=len(self._outbox), why="NATS not reachable")
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def wait_connected(self, wait_s: float) -> bool:
        """Wait until connected (True) or ``wait_s`` seconds (False)."""
        try:
            await asyncio.wait_for(self._connected.wait(), wait_s)
        except TimeoutError:
            return False
        return True

    async def _connect_loop(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                self.nc = await nats.connect(
                    servers=[u.strip() for u in self.settings.url.split(",") if u.strip()],
                    name=f"fazaid {self.replica}",
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=min(2.0, self.settings.retry_max_s),
                    disconnected_cb=self._on_disconnect,
                    reconnected_cb=self._on_reconnect,
                    error_cb=self._on_error,
                )
                self.js = self.nc.jetstream(timeout=5)
                await self._ensure_stream()
            except Exception as e:
                if self.nc is not None:
                    with contextlib.suppress(Exception):
                        await self.nc.close()
                    self.nc = None
                log.warning(
                    "bus_unreachable",
                    url=self.settings.url,
                    error=str(e) or type(e).__name__,
                    retry_in_s=round(delay, 2),
                    message=_UNREACHABLE,
                )
                await asyncio.sleep(delay)
                delay = min(self.settings.retry_max_s, delay * 2)
                continue
            if self._control is not None:
                # The client subscribes again by itself after a reconnect.
                await self.nc.subscribe(self.control_subject(self.replica), cb=self._on_control)
            i = 0
            while i < len(self._subs):  # subscribe() may append while this awaits
                await self.nc.subscribe(self._subs[i][0], cb=self._subs[i][1])
                i += 1
            self._subs_live = True
            log.info("bus_connected", url=self.settings.url, stream=self.settings.stream)
            self._connected.set()
            self._wake.set()
            return

    async def _ensure_stream(self) -> None:
        cfg = StreamConfig(
            name=self.settings.stream,
            subjects=[f"{self.settings.subject_prefix}.>"],
            storage=StorageType.FILE,
            max_age=self.settings.max_age_s,
            duplicate_window=DUPLICATE_WINDOW_S,
        )
        try:
            await self.js.stream_info(self.settings.stream)
        except nats.js.errors.NotFoundError:
            with contextlib.suppress(nats.js.errors.BadRequestError):  # another replica made it first
                await self.js.add_stream(cfg)

    async def _on_disconnect(self) -> None:
        if not self._closing:
            log.warning("bus_disconnected", url=self.settings.url, message="reconnecting with backoff")

    async def _on_reconnect(self) -> None:
        log.info("bus_reconnected", url=self.settings.url)
        self._wake.set()

    async def _on_error(self, e: Exception) -> None:
        if self._closing:
            return
        now = asyncio.get_running_loop().time()
        if self.connected or now - self._last_warning < UNREACHABLE_LOG_EVERY_S:
            log.debug("bus_error", error=str(e) or type(e).__name__)
            return
        # The client retries on its own (with backoff); say so now and then, not on every attempt.
        self._last_warning = now
        log.warning(
            "bus_unreachable",
            url=self.settings.url,
            error=str(e) or type(e).__name__,
            pending=len(self._outbox),
            message=_UNREACHABLE,
        )

    # -- publishing -------------------------------------------------------------------------

    def subject(self, session_id: str) -> str:
        """The subject of a session's events."""
        return f"{self.settings.subject_prefix}.{session_id}"

    def publish(self, events: list[Event]) -> None:
        """Queue committed events for publishing, in order (never blocks, never raises)."""
        for ev in events:
            self._outbox.append(
                _Out(self.subject(ev.session), ev.model_dump_json().encode(), f"{ev.session}:{ev.seq}", {})
            )
        self._wake.set()

    def publish_end(self, session_id: str, status: str, last_seq: int) -> None:
        """Queue the end-of-run marker, after the run's events."""
        body = json.dumps({"status": status, "last_seq": last_seq}).encode()
        self._outbox.append(
            _Out(self.subject(session_id), body, f"{session_id}:end:{last_seq}", {END_HEADER: status})
        )
        self._wake.set()

    async def _publish_loop(self) -> None:
        delay = 0.1
        while True:
            if not self._outbox or not self.connected:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._outbox[i] for i in range(min(PUBLISH_BATCH, len(self._outbox)))]
            try:
                # Sent on one connection in this order; a retried batch is deduplicated by Msg-Id.
                await asyncio.gather(*(self._send(o) for o in batch))
            except Exception as e:
                if isinstance(e, nats.js.errors.NotFoundError | nats.errors.NoRespondersError):
                    with contextlib.suppress(Exception):
                        await self._ensure_stream()
                log.warning(
                    "bus_publish_retry",
                    error=str(e) or type(e).__name__,
                    pending=len(self._outbox),
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)
                delay = min(self.settings.retry_max_s, delay * 2)
                continue
            delay = 0.1
            for _ in batch:
                self._outbox.popleft()
            self.published += len(batch)

    async def _send(self, out: _Out) -> None:
        await self.js.publish(
            out.subject, out.payload, timeout=5, headers={"Nats-Msg-Id": out.msg_id, **out.headers}
        )

    # -- control: replies and aborts for a session that another replica runs ---------------

    def control_subject(self, replica: str) -> str:
        """The subject a replica answers control requests on (its name made subject-safe)."""
        return f"{self.settings.control_prefix}.{re.sub(r'[^A-Za-z0-9_-]', '_', replica)}"

    def serve_control(self, handler: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
        """Answer control requests with ``handler`` (call before :meth:`start`)."""
        self._control = handler

    async def _on_control(self, msg: Any) -> None:
        try:
            body = json.loads(msg.data)
            assert self._control is not None
            answer = await self._control(body)
        except Exception as e:
            answer = {"error": f"replica {self.replica} could not handle the request: {e}", "status": 500}
        with contextlib.suppress(Exception):
            await msg.respond(json.dumps(answer).encode())

    async def request(self, replica: str, body: dict[str, Any], wait_s: float = 5.0) -> dict[str, Any]:
        """Send a control request to ``replica`` and return its answer; :class:`BusUnavailable` if none."""
        if not self.connected:
            raise BusUnavailable(f"NATS at {self.settings.url} is not reachable")
        try:
            msg = await self.nc.request(
                self.control_subject(replica), json.dumps(body).encode(), timeout=wait_s
            )
        except Exception as e:
            raise BusUnavailable(
                f"replica {replica} did not answer over NATS: {e or type(e).__name__}"
            ) from e
        return json.loads(msg.data)

    # -- core NATS for other components (the fleet relay between replicas) ---------------

    async def subscribe(self, subject: str, cb: Callable[[Any], Awaitable[None]]) -> None:
        """Deliver messages on ``subject`` to ``cb`` from now, or from the connection when not up yet."""
        self._subs.append((subject, cb))
        if self._subs_live and self.nc is not None:
            await self.nc.subscribe(subject, cb=cb)

    async def ask(self, subject: str, body: dict[str, Any], wait_s: float = 5.0) -> dict[str, Any]:
        """A request on ``subject`` and its JSON answer; :class:`BusUnavailable` when none comes."""
        if not self.connected:
            raise BusUnavailable(f"NATS at {self.settings.url} is not reachable")
        try:
            msg = await self.nc.request(subject, json.dumps(body).encode(), timeout=wait_s)
        except Exception as e:
            raise BusUnavailable(f"no answer on {subject}: {e or type(e).__name__}") from e
        return json.loads(msg.data)

    async def tell(self, subject: str, body: dict[str, Any]) -> bool:
        """Publish ``body`` on ``subject`` (core NATS, at most once); False when NATS is down."""
        if not self.connected:
            return False
        try:
            await self.nc.publish(subject, json.dumps(body).encode())
        except Exception:
            return False
        return True

    # -- following --------------------------------------------------------------------------

    async def follow(
        self, session_id: str, *, start_ts: str | None, idle_s: float = 1.0
    ) -> AsyncIterator[Event | BusEnd | BusIdle]:
        """The session's events and end markers from ``start_ts`` (minus a margin; all when None).

        An ephemeral pull consumer with explicit acks: a message is acknowledged once the caller has
        taken it. Raises :class:`BusUnavailable` when NATS is not reachable (now or mid-way).
        """
        if not self.connected:
            raise BusUnavailable(f"NATS at {self.settings.url} is not reachable")
        cfg = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            inactive_threshold=30.0,
            max_ack_pending=10000,
            mem_storage=True,
        )
        if start_ts:
            t = datetime.fromisoformat(start_ts.replace("Z", "+00:00")) - timedelta(seconds=START_MARGIN_S)
            cfg.deliver_policy, cfg.opt_start_time = DeliverPolicy.BY_START_TIME, t
        else:
            cfg.deliver_policy = DeliverPolicy.ALL
        try:
            sub = await self.js.pull_subscribe(
                self.subject(session_id), stream=self.settings.stream, config=cfg
            )
        except Exception as e:
            raise BusUnavailable(f"cannot follow {session_id} on NATS: {e or type(e).__name__}") from e
        try:
            while True:
                try:
                    msgs = await sub.fetch(batch=PUBLISH_BATCH, timeout=idle_s)
                except nats.errors.TimeoutError:
                    if not self.connected:
                        raise BusUnavailable(f"lost NATS at {self.settings.url}") from None
                    yield BusIdle()
                    continue
                except Exception as e:
                    raise BusUnavailable(f"lost NATS while following {session_id}: {e}") from e
                for msg in msgs:
                    headers = msg.headers or {}
                    if END_HEADER in headers:
                        body = json.loads(msg.data)
                        yield BusEnd(str(body.get("status")), int(body.get("last_seq", 0)))
                    else:
                        yield Event.model_validate_json(msg.data)
                    with contextlib.suppress(Exception):
                        await msg.ack()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
