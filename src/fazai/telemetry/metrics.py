"""Metric samples: append, latest values, series over a window, downsampling and retention.

Raw samples are kept for ``raw_retention_s``; :meth:`MetricStore.compact` folds older ones into
``step_s`` rollups (min / max / sum / count, so averages stay exact when buckets merge) and deletes
rollups older than ``rollup_retention_s``. A series read joins both, oldest first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.telemetry.tables import metric_rollups, metric_samples


@dataclass(frozen=True, slots=True)
class Retention:
    """How long raw samples and rollups are kept, and the rollup step."""

    raw_retention_s: float = 6 * 3600.0
    step_s: int = 300
    rollup_retention_s: float = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class Point:
    """One value of a series (a raw sample, or a rollup's average with its min/max)."""

    ts: float
    value: float
    vmin: float | None = None
    vmax: float | None = None


class MetricStore:
    """Samples of named metrics per node, on the store's engine."""

    def __init__(self, engine: AsyncEngine, retention: Retention | None = None):
        self.engine = engine
        self.retention = retention or Retention()

    async def record(self, node: str, values: Mapping[str, float], ts: float | None = None) -> int:
        """Store one sample per metric of ``values`` at ``ts`` (now by default); how many were stored.

        Non-finite values (NaN, inf) are refused with a ValueError naming the metric.
        """
        ts = time.time() if ts is None else ts
        rows = []
        for name, value in values.items():
            v = float(value)
            if not math.isfinite(v):
                raise ValueError(f"metric {name!r} of {node!r} is {v}: only finite numbers are stored")
            rows.append({"node": node, "name": name, "ts": ts, "value": v})
        if rows:
            async with self.engine.begin() as conn:
                await conn.execute(insert(metric_samples), rows)
        return len(rows)

    async def nodes(self) -> list[str]:
        """Nodes with at least one raw sample or rollup."""
        async with self.engine.connect() as conn:
            a = (await conn.execute(select(metric_samples.c.node).distinct())).scalars().all()
            b = (await conn.execute(select(metric_rollups.c.node).distinct())).scalars().all()
        return sorted(set(a) | set(b))

    async def latest(self, node: str | None = None) -> dict[tuple[str, str], tuple[float, float]]:
        """(node, metric) → (ts, value) of the newest raw sample, for one node or all."""
        newest = select(
            metric_samples.c.node, metric_samples.c.name, func.max(metric_samples.c.ts).label("ts")
        ).group_by(metric_samples.c.node, metric_samples.c.name)
        if node is not None:
            newest = newest.where(metric_samples.c.node == node)
        sub = newest.subquery()
        q = select(
            metric_samples.c.node, metric_samples.c.name, metric_samples.c.ts, metric_samples.c.value
        ).join(
            sub,
            and_(
                metric_samples.c.node == sub.c.node,
                metric_samples.c.name == sub.c.name,
                metric_samples.c.ts == sub.c.ts,
            ),
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return {(r.node, r.name): (r.ts, r.value) for r in rows}

    async def series(self, node: str, name: str, since: float) -> list[Point]:
        """The metric's points with ``ts >= since``: rollups (older part) then raw samples."""
        async with self.engine.connect() as conn:
            raw = (
                await conn.execute(
                    select(metric_samples.c.ts, metric_samples.c.value)
                    .where(
                        metric_samples.c.node == node,
                        metric_samples.c.name == name,
                        metric_samples.c.ts >= since,
                    )
                    .order_by(metric_samples.c.ts)
                )
            ).all()
            first_raw = raw[0].ts if raw else math.inf
            rolled = (
                await conn.execute(
                    select(metric_rollups)
                    .where(
                        metric_rollups.c.node == node,
                        metric_rollups.c.name == name,
                        metric_rollups.c.bucket + metric_rollups.c.step > since,
                        metric_rollups.c.bucket < first_raw,
                    )
                    .order_by(metric_rollups.c.bucket)
                )
            ).all()
        pts = [Point(r.bucket, r.vsum / r.n, r.vmin, r.vmax) for r in rolled if r.n]
        pts += [Point(r.ts, r.value) for r in raw]
        return pts

    async def compact(self, now: float | None = None) -> dict[str, int]:
        """Fold raw samples past their retention into rollups; drop expired rollups. Counts of each."""
        now = time.time() if now is None else now
        r = self.retention
        cutoff = now - r.raw_retention_s
        step = r.step_s
        async with self.engine.begin() as conn:
            old = (
                await conn.execute(
                    select(
                        metric_samples.c.node,
                        metric_samples.c.name,
                        metric_samples.c.ts,
                        metric_samples.c.value,
                    ).where(metric_samples.c.ts < cutoff)
                )
            ).all()
            merged: dict[tuple[str, str, float], list[float]] = {}
            for row in old:
                key = (row.node, row.name, math.floor(row.ts / step) * step)
                agg = merged.get(key)
                if agg is None:
                    merged[key] = [row.value, row.value, row.value, 1]
                else:
                    agg[0] = min(agg[0], row.value)
                    agg[1] = max(agg[1], row.value)
                    agg[2] += row.value
                    agg[3] += 1
            if merged:
                keys = list(merged)
                existing: list[Any] = []
                for i in range(0, len(keys), 300):  # bounded IN lists
                    chunk = keys[i : i + 300]
                    existing += (
                        await conn.execute(
                            select(metric_rollups).where(
                                metric_rollups.c.step == step,
                                tuple_(
                                    metric_rollups.c.node, metric_rollups.c.name, metric_rollups.c.bucket
                                ).in_(chunk),
                            )
                        )
                    ).all()
                for row in existing:
                    agg = merged[(row.node, row.name, row.bucket)]
                    agg[0], agg[1] = min(agg[0], row.vmin), max(agg[1], row.vmax)
                    agg[2] += row.vsum
                    agg[3] += row.n
                    await conn.execute(
                        delete(metric_rollups).where(
                            metric_rollups.c.node == row.node,
                            metric_rollups.c.name == row.name,
                            metric_rollups.c.step == step,
                            metric_rollups.c.bucket == row.bucket,
                        )
                    )
                await conn.execute(
                    insert(metric_rollups),
                    [
                        {"node": n, "name": m, "step": step, "bucket": b, "vmin": a[0], "vmax": a[1],
                         "vsum": a[2], "n": int(a[3])}
                        for (n, m, b), a in merged.items()
                    ],
                )  # fmt: skip
                await conn.execute(delete(metric_samples).where(metric_samples.c.ts < cutoff))
            expired = await conn.execute(
                delete(metric_rollups).where(metric_rollups.c.bucket < now - r.rollup_retention_s)
            )
        return {"rolled_up": len(old), "buckets": len(merged), "expired_buckets": expired.rowcount or 0}


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 40) -> str:
    """A unicode sparkline of ``values`` resampled to at most ``width`` characters."""
    if not values:
        return ""
    if len(values) > width:
        # Average into `width` bins, so a long window still fits on one line.
        bins: list[float] = []
        for i in range(width):
            part = values[i * len(values) // width : (i + 1) * len(values) // width] or [values[-1]]
            bins.append(sum(part) / len(part))
        values = bins
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        return _BARS[3] * len(values)
    return "".join(_BARS[min(7, int((v - lo) / (hi - lo) * 7.999))] for v in values)
