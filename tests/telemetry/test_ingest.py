"""EVE ingest into the real store: dedup, raw records kept, malformed lines counted and stored."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sqlalchemy import select

from fazai.telemetry import EveIngest, follow_lines, stored_counts
from fazai.telemetry.tables import alerts, eve_rejects

from .conftest import eve, eve_line


async def test_duplicates_fold_into_one_alert_with_its_raw_record(store) -> None:
    ing = EveIngest(store.engine, "fw1", window_s=60)
    first = ing.feed_line(eve_line(ts="2025-03-01T10:15:00.000000+0000"))
    assert first is not None
    # Same signature and source 30 s later: a duplicate; another source: a new alert.
    assert ing.feed_line(eve_line(ts="2025-03-01T10:15:30.000000+0000")) is None
    other = ing.feed_line(eve_line(src="203.0.113.9", ts="2025-03-01T10:15:31.000000+0000"))
    assert other is not None
    # Past the window: a new group for the same source.
    later = ing.feed_line(eve_line(ts="2025-03-01T10:16:01.000000+0000"))
    assert later is not None and later.id != first.id
    await ing.flush()
    async with store.engine.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(select(alerts))).all()}
    assert rows[first.id].count == 2
    assert rows[first.id].last_seen - rows[first.id].first_seen == 30
    assert rows[first.id].raw == eve(ts="2025-03-01T10:15:00.000000+0000")
    assert rows[other.id].count == 1 and rows[later.id].count == 1
    assert ing.counters.as_dict() == {
        "lines": 4, "alerts": 3, "duplicates": 1, "other": 0, "rejected": 0, "blank": 0,
    }  # fmt: skip


async def test_malformed_lines_are_counted_and_stored_with_the_reason(store) -> None:
    ing = EveIngest(store.engine, "fw1")
    lines = [
        eve_line(),
        '{"timestamp": "2025-03-01T10:15:02+0000", "event_type": "alert", "alert": {',  # cut short
        "[1, 2]",
        json.dumps({"event_type": "alert", "alert": {"signature_id": 1}}),  # no timestamp
        json.dumps({"event_type": "alert", "timestamp": "yesterday", "alert": {"signature_id": 1}}),
        json.dumps({"event_type": "flow", "timestamp": "2025-03-01T10:15:02+0000"}),
        "",
    ]
    for line in lines:
        ing.feed_line(line)
    await ing.flush()
    c = ing.counters
    assert (c.alerts, c.rejected, c.other, c.blank) == (1, 4, 1, 1)
    assert c.accounted() == c.lines == len(lines)
    async with store.engine.connect() as conn:
        rej = (await conn.execute(select(eve_rejects).order_by(eve_rejects.c.id))).all()
    assert [r.line for r in rej] == lines[1:5]
    assert "not a JSON line" in rej[0].reason
    assert "not a JSON object" in rej[1].reason
    assert "'timestamp'" in rej[2].reason
    assert "yesterday" in rej[3].reason or "timestamp" in rej[3].reason


async def test_trigger_storm_of_10000_alerts_loses_none(store) -> None:
    """10,000 alerts within one second from 40 sources, 1 in 100 lines damaged: all accounted for."""
    ing = EveIngest(store.engine, "fw1", window_s=60)
    lines = []
    for i in range(10_000):
        if i % 100 == 99:
            lines.append('{"event_type": "alert", "broken')
            continue
        ms = i // 10
        lines.append(eve_line(src=f"198.51.100.{i % 40}", ts=f"2025-03-01T10:15:00.{ms:03d}000+0000"))
    new = [a for a in (ing.feed_line(x) for x in lines) if a is not None]
    await ing.flush()
    c = ing.counters
    assert c.lines == 10_000 and c.accounted() == 10_000
    assert len(new) == c.alerts == 40
    assert c.rejected == 100 and c.duplicates == 10_000 - 100 - 40
    stored = await stored_counts(store.engine, "fw1")
    assert stored == {"alert_rows": 40, "alerts_counted": c.alerts + c.duplicates, "rejected": 100}


async def test_a_restart_keeps_open_groups(store) -> None:
    ing = EveIngest(store.engine, "fw1", window_s=60)
    ing.feed_line(eve_line(ts="2025-03-01T10:15:00.000000+0000"))
    await ing.flush()
    again = EveIngest(store.engine, "fw1", window_s=60)
    assert await again.load_open_groups() == 1
    assert again.feed_line(eve_line(ts="2025-03-01T10:15:20.000000+0000")) is None
    await again.flush()
    assert (await stored_counts(store.engine))["alerts_counted"] == 2


async def test_follow_lines_reads_appends_and_a_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "eve.json"
    path.write_text("old\n")
    stop = asyncio.Event()
    got: list[str] = []

    async def reader() -> None:
        async for batch in follow_lines(path, poll_s=0.01, stop=stop):
            got.extend(batch)
            if "c" in got:
                stop.set()

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    with path.open("a") as f:
        f.write("a\nb")  # "b" is not complete yet
    await asyncio.sleep(0.05)
    assert got == ["a"]
    path.rename(tmp_path / "eve.json.0")
    path.write_text("c\n")
    await asyncio.wait_for(task, 5)
    assert got == ["a", "c"]
