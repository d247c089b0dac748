"""Telemetry: EVE alert ingest with dedup, metric samples with downsampling and retention,
Prometheus exposition. Tables come from migration ``0003_telemetry`` on the session store's engine.

The names below load on first use: the node agent imports :mod:`fazai.telemetry.local` (the /proc
sampler) and must not pull the store's SQLAlchemy in with it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "Counters": "ingest",
    "EveIngest": "ingest",
    "StoredAlert": "ingest",
    "follow_lines": "ingest",
    "stored_counts": "ingest",
    "MetricStore": "metrics",
    "Point": "metrics",
    "Retention": "metrics",
    "sparkline": "metrics",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'fazai.telemetry' has no attribute {name!r}")
    return getattr(import_module(f"fazai.telemetry.{_WHERE[name]}"), name)
