"""The context a run's templates and ``when`` conditions read: what triggered it, and step results."""

from __future__ import annotations

from typing import Any

from fazai.opnsense.alerts import SuricataAlert


def alert_context(alert: SuricataAlert, *, alert_id: str | None = None, source: str = "") -> dict[str, Any]:
    """``{alert: {...}, summary}`` for an alert-triggered run."""
    data = alert.event_data()
    data.update(id=alert_id, source=source or data.get("source"))
    summary = (
        f"{alert.signature} (sid {alert.signature_id}, severity {alert.severity}) "
        f"from {alert.src_ip} to {alert.dest_ip} on {alert.in_iface or '?'}"
    )
    return {"alert": data, "summary": summary, "trigger": "alert"}


def metric_context(
    node: str,
    name: str,
    value: float,
    threshold: float,
    held_s: float,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``{metric: {...}, node, summary}`` for a metric-triggered run (``metric.labels``: what the
    sample carried besides its value, e.g. ``last1`` … of ``journal_errors``; ``{}`` when nothing)."""
    return {
        "metric": {
            "node": node,
            "name": name,
            "value": value,
            "threshold": threshold,
            "held_s": held_s,
            "labels": dict(labels or {}),
        },
        "node": {"name": node},
        "summary": f"{name} on {node} is {value:g} (threshold {threshold:g}, held {held_s:g}s)",
        "trigger": "metric",
    }


def node_context(node: str, old: str | None, new: str) -> dict[str, Any]:
    """``{node: {...}, summary}`` for a node-state run."""
    return {
        "node": {"name": node, "from": old, "to": new},
        "summary": f"node {node} went from {old or 'unknown'} to {new}",
        "trigger": "node_state",
    }


def schedule_context(now_iso: str) -> dict[str, Any]:
    """``{summary}`` for a scheduled run."""
    return {"summary": f"scheduled run at {now_iso}", "now": now_iso, "trigger": "schedule"}
