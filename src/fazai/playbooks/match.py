"""Trigger matching: alerts against ``alert:`` triggers, metric samples against thresholds held for
a duration, schedules, node state changes."""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass, field

from fazai.opnsense.alerts import SuricataAlert
from fazai.playbooks.schema import AlertMatch, MetricMatch, NodeStateMatch, Playbook


def _glob(pattern: str | None, value: str | None) -> bool:
    return pattern is None or fnmatch.fnmatchcase((value or "").lower(), pattern.lower())


def _in_nets(nets: list[str] | None, ip: str) -> bool:
    if nets is None:
        return True
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(n, strict=False) for n in nets)


def alert_matches(m: AlertMatch, alert: SuricataAlert, source: str = "") -> bool:
    """Whether ``alert`` (from ``source``) satisfies every field ``m`` gives."""
    if m.signature_id is not None and alert.signature_id not in m.signature_id:
        return False
    if m.severity_max is not None and (alert.severity is None or alert.severity > m.severity_max):
        return False
    if m.interface is not None and alert.in_iface not in m.interface:
        return False
    if m.source is not None and source not in m.source:
        return False
    return (
        _glob(m.signature, alert.signature)
        and _glob(m.category, alert.category)
        and _in_nets(m.src, alert.src_ip)
        and _in_nets(m.dst, alert.dest_ip)
    )


def matching_alert_playbooks(books: list[Playbook], alert: SuricataAlert, source: str = "") -> list[Playbook]:
    """Enabled playbooks whose alert trigger matches."""
    return [
        pb
        for pb in books
        if pb.enabled and pb.trigger.alert is not None and alert_matches(pb.trigger.alert, alert, source)
    ]


def node_state_matches(m: NodeStateMatch, node: str, old: str | None, new: str) -> bool:
    """Whether a change of ``node`` from ``old`` to ``new`` satisfies ``m``."""
    return (
        fnmatch.fnmatchcase(node, m.node)
        and new == m.to
        and old != new
        and (m.from_ is None or old == m.from_)
    )


def _beyond(m: MetricMatch, value: float) -> bool:
    return value > m.above if m.above is not None else value < m.below  # type: ignore[operator]


@dataclass
class MetricWatch:
    """Per (playbook, node, metric): since when the threshold has been crossed; fires once per crossing."""

    since: dict[tuple[str, str, str], float] = field(default_factory=dict)
    fired: set[tuple[str, str, str]] = field(default_factory=set)

    def observe(self, pb: Playbook, node: str, name: str, value: float, ts: float) -> bool:
        """Account for one sample; True when ``pb`` should run now (held for ``for`` seconds)."""
        m = pb.trigger.metric
        if m is None or m.name != name or not fnmatch.fnmatchcase(node, m.node):
            return False
        key = (pb.name, node, name)
        if not _beyond(m, value):
            self.since.pop(key, None)
            self.fired.discard(key)  # back to normal: the next crossing fires again
            return False
        start = self.since.setdefault(key, ts)
        if key not in self.fired and ts - start >= m.for_s:
            self.fired.add(key)
            return True
        return False


@dataclass
class ScheduleClock:
    """When each scheduled playbook is due next."""

    due: dict[str, float] = field(default_factory=dict)

    def tick(self, books: list[Playbook], now: float) -> list[Playbook]:
        """The scheduled playbooks due at ``now`` (their next time moves on)."""
        out = []
        for pb in books:
            s = pb.trigger.schedule
            if s is None or not pb.enabled:
                continue
            if pb.name not in self.due:
                self.due[pb.name] = now if s.at_start else now + s.every
            if now >= self.due[pb.name]:
                out.append(pb)
                self.due[pb.name] = now + s.every
        return out
