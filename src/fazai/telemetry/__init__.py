"""Telemetry: EVE alert ingest with dedup, metric samples with downsampling and retention,
Prometheus exposition. Tables come from migration ``0003_telemetry`` on the session store's engine."""

from fazai.telemetry.ingest import Counters, EveIngest, StoredAlert, follow_lines, stored_counts
from fazai.telemetry.metrics import MetricStore, Point, Retention, sparkline

__all__ = [
    "Counters",
    "EveIngest",
    "MetricStore",
    "Point",
    "Retention",
    "StoredAlert",
    "follow_lines",
    "sparkline",
    "stored_counts",
]
