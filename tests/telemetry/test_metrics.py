"""Metric samples in the real store: latest values, series, rollups and retention, exposition."""

from __future__ import annotations

import pytest

from fazai.telemetry import MetricStore, Retention, sparkline
from fazai.telemetry.local import LocalSource
from fazai.telemetry.prom import TelemetryCollector


async def test_latest_and_series(store) -> None:
    m = MetricStore(store.engine)
    for i in range(5):
        await m.record("web1", {"disk_used_pct": 50 + i, "load1": i / 10}, ts=1000.0 + i * 10)
    await m.record("web2", {"load1": 3.0}, ts=1005.0)
    latest = await m.latest()
    assert latest[("web1", "disk_used_pct")] == (1040.0, 54.0)
    assert latest[("web2", "load1")] == (1005.0, 3.0)
    pts = await m.series("web1", "disk_used_pct", since=1015.0)
    assert [p.value for p in pts] == [52.0, 53.0, 54.0]
    assert await m.nodes() == ["web1", "web2"]


async def test_non_finite_values_are_refused(store) -> None:
    with pytest.raises(ValueError, match="only finite"):
        await MetricStore(store.engine).record("web1", {"cpu_pct": float("nan")})


async def test_compaction_rolls_up_then_expires(store) -> None:
    m = MetricStore(store.engine, Retention(raw_retention_s=600, step_s=300, rollup_retention_s=3600))
    # Samples every 60 s from t=0 to t=1140 (20 of them), values 0..19.
    for i in range(20):
        await m.record("n", {"x": float(i)}, ts=i * 60.0)
    out = await m.compact(now=1200.0)  # raw older than t=600 (samples 0..9) folds into 2 buckets
    assert out == {"rolled_up": 10, "buckets": 2, "expired_buckets": 0}
    pts = await m.series("n", "x", since=0)
    assert [(p.ts, p.value, p.vmin, p.vmax) for p in pts[:2]] == [
        (0.0, 2.0, 0.0, 4.0),
        (300.0, 7.0, 5.0, 9.0),
    ]
    assert [p.value for p in pts[2:]] == [float(i) for i in range(10, 20)]
    # A late sample for an existing bucket merges into it (the average stays exact).
    await m.record("n", {"x": 100.0}, ts=310.0)
    await m.compact(now=1200.0)
    pts = await m.series("n", "x", since=0)
    assert pts[1].value == pytest.approx((5 + 6 + 7 + 8 + 9 + 100) / 6) and pts[1].vmax == 100.0
    # At t=4000 the rest of the raw samples fold into buckets 600 and 900, and the buckets older
    # than an hour (0 and 300) go.
    out = await m.compact(now=4000.0)
    assert out == {"rolled_up": 10, "buckets": 2, "expired_buckets": 2}
    assert [p.ts for p in await m.series("n", "x", since=0)] == [600.0, 900.0]


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert len(sparkline(list(range(1000)), width=30)) == 30
    assert sparkline([5, 5, 5]) == "▄▄▄"


def test_local_source_reads_proc() -> None:
    src = LocalSource()
    first = src.sample()
    assert 0 <= first["disk_used_pct"] <= 100 and first["mem_available_bytes"] > 0
    assert "load1" in first and "net_rx_bytes" in first
    assert "cpu_pct" not in first  # needs two readings
    assert 0 <= src.sample().get("cpu_pct", 0) <= 100


async def test_prometheus_exposition(store) -> None:
    m = MetricStore(store.engine)
    await m.record("web1", {"disk_used_pct": 91.5}, ts=1000.0)
    col = TelemetryCollector()
    col.set_latest(await m.latest())
    text = col.render().decode()
    assert 'fazai_node_metric{metric="disk_used_pct",node="web1"} 91.5' in text
