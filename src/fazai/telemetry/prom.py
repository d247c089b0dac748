"""Prometheus exposition of telemetry: the latest value of every node metric, and ingest counters.

Collectors are synchronous and the store is async, so the daemon refreshes a snapshot (after each
sample and ingest) and the collector reads the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from fazai.telemetry.ingest import Counters


class TelemetryCollector:
    """``fazai_node_metric{node,metric}`` gauges and ``fazai_eve_lines_total{source,outcome}``."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str], tuple[float, float]] = {}
        self.ingests: dict[str, Counters] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # type: ignore[arg-type]

    def set_latest(self, latest: Mapping[tuple[str, str], tuple[float, float]]) -> None:
        """Replace the snapshot of latest values ((node, metric) → (ts, value))."""
        self.latest = dict(latest)

    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily("fazai_node_metric", "Latest value of a node metric", labels=["node", "metric"])
        age = GaugeMetricFamily(
            "fazai_node_metric_timestamp_seconds",
            "When the latest value was sampled",
            labels=["node", "metric"],
        )
        for (node, name), (ts, value) in sorted(self.latest.items()):
            g.add_metric([node, name], value)
            age.add_metric([node, name], ts)
        yield g
        yield age
        c = CounterMetricFamily(
            "fazai_eve_lines", "EVE lines ingested, by outcome", labels=["source", "outcome"]
        )
        for source, counters in sorted(self.ingests.items()):
            for outcome, n in counters.as_dict().items():
                if outcome != "lines":
                    c.add_metric([source, outcome], n)
        yield c

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
