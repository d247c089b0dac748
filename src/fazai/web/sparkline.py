"""Metric charts for the console: a server-rendered inline SVG sparkline per series.

Why not a chart library: the node page shows a few metrics of one node over hours, a line each, with
now/min/max printed beside it — no zoom, legend or tooltips to drive. An SVG ``<polyline>`` of at most
:data:`MAX_POINTS` points does that with no JavaScript (so nothing to vendor, and the console keeps
working with scripts off), scales to any screen width, and carries only numbers this module computed,
so there is nothing to escape. Bucketed averages keep a long window one line wide; a rollup's min/max
band is drawn behind the line so a spike that the average hides still shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

MAX_POINTS = 120
WIDTH, HEIGHT = 300, 48


def _bins(points: Sequence[Any], n: int) -> list[tuple[float, float, float, float]]:
    """(ts, mean, min, max) of ``points`` folded into at most ``n`` buckets."""
    rows = [(p.ts, p.value, p.vmin if p.vmin is not None else p.value,
             p.vmax if p.vmax is not None else p.value) for p in points]  # fmt: skip
    if len(rows) <= n:
        return rows
    out = []
    for i in range(n):
        part = rows[i * len(rows) // n : (i + 1) * len(rows) // n]
        if part:
            out.append((part[-1][0], sum(r[1] for r in part) / len(part),
                        min(r[2] for r in part), max(r[3] for r in part)))  # fmt: skip
    return out


def svg(points: Sequence[Any], *, label: str = "") -> Markup:
    """An inline ``<svg>`` sparkline of ``points`` (objects with ``ts``, ``value``, ``vmin``, ``vmax``)."""
    rows = _bins(points, MAX_POINTS)
    if not rows:
        return Markup(
            '<svg class="spark empty" role="img" aria-label="no samples" viewBox="0 0 300 48"></svg>'
        )
    t0, t1 = rows[0][0], rows[-1][0]
    lo, hi = min(r[2] for r in rows), max(r[3] for r in rows)
    span_t, span_v = (t1 - t0) or 1.0, (hi - lo) or 1.0

    def xy(t: float, v: float) -> str:
        x = (t - t0) / span_t * (WIDTH - 2) + 1 if len(rows) > 1 else WIDTH / 2
        y = HEIGHT - 2 - (v - lo) / span_v * (HEIGHT - 4) if hi > lo else HEIGHT / 2
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(t, v) for t, v, _, _ in rows)
    band = ""
    if any(r[2] != r[3] for r in rows):
        top = [xy(t, vmax) for t, _, _, vmax in rows]
        bottom = [xy(t, vmin) for t, _, vmin, _ in reversed(rows)]
        band = f'<polygon class="band" points="{" ".join(top + bottom)}"/>'
    last = xy(rows[-1][0], rows[-1][1])
    aria = f"{len(points)} samples, from {lo:g} to {hi:g}"
    # `label` is the only text: escaped by Markup.format.
    return Markup(
        '<svg class="spark" role="img" viewBox="0 0 {w} {h}" preserveAspectRatio="none" '
        'aria-label="{label}: {aria}">{band}<polyline points="{line}"/>'
        '<circle cx="{cx}" cy="{cy}" r="2"/></svg>'
    ).format(
        w=WIDTH, h=HEIGHT, label=label, aria=aria, band=Markup(band), line=line,
        cx=last.split(",")[0], cy=last.split(",")[1],
    )  # fmt: skip
