"""The telemetry store on both backends: dedup bumps (GREATEST vs MAX), rollups, counts."""

from __future__ import annotations

from sqlalchemy import select

from fazai.telemetry import EveIngest, MetricStore, Retention, stored_counts
from fazai.telemetry.tables import alerts

from .conftest import eve_line


async def test_ingest_and_metrics_on_each_backend(any_store) -> None:
    ing = EveIngest(any_store.engine, "fw1", window_s=60)
    ing.feed_line(eve_line(ts="2025-03-01T10:15:00.000000+0000"))
    ing.feed_line(eve_line(ts="2025-03-01T10:15:30.000000+0000"))
    ing.feed_line("{broken")
    await ing.flush()
    ing.feed_line(eve_line(ts="2025-03-01T10:15:10.000000+0000"))  # older than last_seen: max kept
    await ing.flush()
    assert await stored_counts(any_store.engine) == {"alert_rows": 1, "alerts_counted": 3, "rejected": 1}
    async with any_store.engine.connect() as conn:
        row = (await conn.execute(select(alerts.c.first_seen, alerts.c.last_seen))).one()
    assert row.last_seen - row.first_seen == 30
    m = MetricStore(any_store.engine, Retention(raw_retention_s=60, step_s=60, rollup_retention_s=3600))
    for i in range(4):
        await m.record("n", {"x": float(i)}, ts=i * 30.0)
    assert (await m.compact(now=150.0))["rolled_up"] == 3
    assert [(p.ts, p.value) for p in await m.series("n", "x", 0)] == [(0.0, 0.5), (60.0, 2.0), (90.0, 3.0)]
