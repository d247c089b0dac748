"""The event bus on a real nats-server: ordered, exactly once, across NATS being down and restarting."""

from __future__ import annotations

import asyncio
import contextlib
import json

import nats
import pytest
from nats.js.api import DeliverPolicy

from fazai.bus import BusEnd, BusIdle, BusUnavailable, EventBus
from fazai.config import BusSettings
from fazai.protocol import Event
from services import Nats, free_port


def ev(seq: int, session: str = "s_abc") -> Event:
    return Event(session=session, seq=seq, kind="token", data={"text": f"t{seq}"})  # type: ignore[arg-type]


async def stream_contents(url: str, subject: str) -> list[tuple[str, object]]:
    """Every message stored on ``subject``, in stream order, read by an independent client."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        out: list[tuple[str, object]] = []
        while True:
            msg = await sub.next_msg(timeout=5)
            if msg.headers and "Fazai-End" in msg.headers:
                out.append(("end", json.loads(msg.data)["last_seq"]))
            else:
                out.append(("event", json.loads(msg.data)["seq"]))
            if msg.metadata.num_pending == 0:  # the last message of the subject
                break
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def wait_until(pred, within_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not pred():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_nats_down_at_start_then_killed_mid_run_loses_and_repeats_nothing(capsys) -> None:
    try:
        server = Nats()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    bus = EventBus(BusSettings(url=server.url, retry_max_s=0.5), "r1")
    bus.start()
    try:
        # Down at start: the replica keeps going, queues, and says so.
        bus.publish([ev(i) for i in range(1, 51)])
        await asyncio.sleep(0.5)
        assert not bus.connected and bus.pending == 50
        with pytest.raises(BusUnavailable):
            async for _ in bus.follow("s_abc", start_ts=None):
                pass
        server.start()
        await wait_until(lambda: bus.connected and bus.pending == 0)
        assert await stream_contents(server.url, "fazai.events.s_abc") == [("event", i) for i in range(1, 51)]
        # Killed mid-run (kill -9) and restarted on the same store dir.
        server.stop()
        bus.publish([ev(i) for i in range(51, 101)])
        bus.publish_end("s_abc", "done", 100)
        await asyncio.sleep(0.5)
        assert bus.pending == 51
        server.start()
        await wait_until(lambda: bus.connected and bus.pending == 0)
        got = await stream_contents(server.url, "fazai.events.s_abc")
        assert got == [("event", i) for i in range(1, 101)] + [("end", 100)]
        # A follower from the start sees all of it, in order, then the end marker.
        seen: list[int] = []
        async with contextlib.aclosing(bus.follow("s_abc", start_ts=None, idle_s=0.3)) as items:
            async for item in items:
                if isinstance(item, Event):
                    seen.append(item.seq)
                elif isinstance(item, BusEnd):
                    assert (item.status, item.last_seq) == ("done", 100)
                    break
                elif isinstance(item, BusIdle):
                    raise AssertionError(f"idle before the end marker, after {seen[-1:]}")
        assert seen == list(range(1, 101))
    finally:
        await bus.stop(flush_s=1)
        server.destroy()
    logged = capsys.readouterr()
    assert "bus_unreachable" in logged.out + logged.err


async def test_follow_from_a_time_skips_nothing_after_it(nats_server: Nats) -> None:
    bus = EventBus(BusSettings(url=nats_server.url), "r1")
    bus.start()
    try:
        first = [ev(i, "s_t") for i in range(1, 6)]
        bus.publish(first)
        await wait_until(lambda: bus.connected and bus.pending == 0)
        later = [ev(i, "s_t") for i in range(6, 11)]
        bus.publish(later)
        bus.publish_end("s_t", "done", 10)
        # From the 5th event's time: the margin brings earlier ones too (skipped by seq by callers),
        # never fewer than every event after it.
        seqs: list[int] = []
        async with contextlib.aclosing(bus.follow("s_t", start_ts=first[-1].ts, idle_s=2)) as items:
            async for item in items:
                if isinstance(item, Event):
                    seqs.append(item.seq)
                elif isinstance(item, BusEnd):
                    break
        assert [s for s in seqs if s > 5] == list(range(6, 11))
        assert seqs == sorted(seqs)
        # Other sessions' subjects are not mixed in.
        bus.publish([ev(1, "s_other")])
        await wait_until(lambda: bus.pending == 0)
        assert await stream_contents(nats_server.url, "fazai.events.s_other") == [("event", 1)]
    finally:
        await bus.stop()


def test_free_port_respects_the_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAZAI_TEST_PORTS", "42690-42699")
    p = free_port()
    assert 42690 <= p <= 42699
