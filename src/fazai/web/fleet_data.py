"""What the console's fleet pages show, read from the stores that own it.

Nodes come from the inventory (``fazai.store.inventory``), metrics and alerts from the telemetry
store (``fazai.telemetry``), a node's sessions from the session log (its ``node`` events, and the
``step`` events of playbook runs that acted on it), and the knowledge a node's sessions used from
those sessions' ``context`` (KB hits) and ``kb_commit`` events. Nothing here authorises: the pages
do, through :mod:`fazai.web.access`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import desc, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.auth import Scope
from fazai.store.inventory import NodeRecord
from fazai.store.schema import events, sessions
from fazai.telemetry.tables import alerts

# An alert is "open" while it keeps firing: seen within this window (alerts have no ack state).
OPEN_ALERT_S = 24 * 3600.0
# How far back a node page looks in the session log (newest events first).
SCAN_EVENTS = 5000


def node_scope(n: NodeRecord) -> Scope:
    """The scope a node belongs to (its org, and its site when it has one)."""
    return Scope(n.org or "default", n.site)


def node_addresses(n: NodeRecord) -> set[str]:
    """Addresses that name the node in alerts: its inventory address and an ``ip`` label."""
    return {a for a in (n.address, n.labels.get("ip")) if a}


def alert_sources(n: NodeRecord) -> set[str]:
    """Ingest sources that are the node itself (its IDS API, an agent's own feed)."""
    return {n.name, f"ids:{n.name}", f"agent:{n.name}"}


@dataclass
class NodeAlerts:
    """Open alerts per node name, and how many open alerts matched no node."""

    by_node: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unmatched: int = 0


def _alert_row(r: Any) -> dict[str, Any]:
    return {
        "id": r.id, "source": r.source, "signature_id": r.signature_id, "signature": r.signature,
        "category": r.category, "severity": r.severity, "src_ip": r.src_ip, "dest_ip": r.dest_ip,
        "proto": r.proto, "iface": r.in_iface, "count": r.count,
        "first_seen": _iso(r.first_seen), "last_seen": _iso(r.last_seen),
    }  # fmt: skip


def _iso(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else ""


async def open_alerts(
    engine: AsyncEngine, nodes: list[NodeRecord], *, now: float | None = None, limit: int = 2000
) -> NodeAlerts:
    """Alerts seen within :data:`OPEN_ALERT_S` whose source or destination is a node's address, or
    whose ingest source is the node."""
    since = (now or time.time()) - OPEN_ALERT_S
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(alerts)
                .where(alerts.c.last_seen >= since)
                .order_by(desc(alerts.c.last_seen))
                .limit(limit)
            )
        ).all()
    by_addr: dict[str, list[str]] = defaultdict(list)
    by_source: dict[str, list[str]] = defaultdict(list)
    for n in nodes:
        for a in node_addresses(n):
            by_addr[a].append(n.name)
        for s in alert_sources(n):
            by_source[s].append(n.name)
    out = NodeAlerts()
    for r in rows:
        names = {*by_addr.get(r.src_ip, ()), *by_addr.get(r.dest_ip, ()), *by_source.get(r.source, ())}
        if not names:
            out.unmatched += 1
        for name in names:
            out.by_node.setdefault(name, []).append(_alert_row(r))
    return out


async def node_sessions(engine: AsyncEngine, node: str) -> list[dict[str, Any]]:
    """Sessions that ran on ``node`` (``--node``, fan-out) or whose playbook steps acted on it,
    newest first, with how they touched it."""
    q = (
        select(events.c.session, events.c.kind, events.c.data)
        .where(or_(events.c.kind == "node", events.c.kind == "step"))
        .order_by(desc(events.c.id))
        .limit(SCAN_EVENTS)
    )
    how: dict[str, str] = {}
    async with engine.connect() as conn:
        for sid, kind, data in (await conn.execute(q)).all():
            if not isinstance(data, dict) or sid in how:
                continue
            if kind == "node" and data.get("node") == node:
                how[sid] = "ran on it"
            elif kind == "step" and data.get("status") == "planned":
                targets = {a.get("target") for a in data.get("actions") or [] if isinstance(a, dict)}
                if node in targets:
                    how[sid] = f"playbook step {data.get('step')}"
        if not how:
            return []
        rows = (await conn.execute(select(sessions).where(sessions.c.id.in_(list(how))))).all()
    out = [
        {"id": r.id, "goal": r.goal, "mode": r.mode, "status": r.status, "created_at": r.created_at,
         "summary": r.summary, "how": how[r.id]}
        for r in rows
    ]  # fmt: skip
    return sorted(out, key=lambda s: s["created_at"], reverse=True)


async def kb_used(engine: AsyncEngine, session_ids: list[str]) -> list[dict[str, Any]]:
    """Knowledge items the given sessions were shown (KB hits in their context) or committed."""
    if not session_ids:
        return []
    q = select(events.c.session, events.c.kind, events.c.data).where(
        events.c.session.in_(session_ids), or_(events.c.kind == "context", events.c.kind == "kb_commit")
    )
    items: dict[str, dict[str, Any]] = {}
    async with engine.connect() as conn:
        for sid, kind, data in (await conn.execute(q)).all():
            if not isinstance(data, dict):
                continue
            found = (data.get("kb") or []) if kind == "context" else [data]
            for hit in found:
                if not isinstance(hit, dict):
                    continue
                item = hit.get("item") if isinstance(hit.get("item"), dict) else hit
                key = str(item.get("id") or item.get("title") or "")
                if not key:
                    continue
                e = items.setdefault(
                    key,
                    {"id": item.get("id"), "title": item.get("title") or key, "status": item.get("status"),
                     "sessions": set(), "how": set()},
                )  # fmt: skip
                e["sessions"].add(sid)
                e["how"].add("committed" if kind == "kb_commit" else "retrieved")
    out = []
    for e in items.values():
        out.append({**e, "sessions": sorted(e["sessions"]), "how": sorted(e["how"])})
    return sorted(out, key=lambda e: (-len(e["sessions"]), str(e["title"])))


def group_nodes(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Nodes under ``org / site / group`` headings, in name order."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        n: NodeRecord = r["node"]
        head = " / ".join(x for x in (n.org, n.site or "(no site)", n.group) if x)
        groups[head].append(r)
    return sorted(groups.items())
