"""Console pages of the fleet: the overview, a node's tabs, and playbook runs.

Each page asks the same policy as the API (``fleet.read`` on the node's site, ``session.read`` on
each session's site, ``kb.read`` for the knowledge tab) through :func:`fazai.web.console.check` /
``Access.may``; what the caller may not read is left out, and a node they may not read is a 403.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from fazai.auth import approval_role
from fazai.store.inventory import Inventory, NodeRecord
from fazai.telemetry import MetricStore
from fazai.telemetry.local import node_name as local_node_name
from fazai.web import fleet_data as fd
from fazai.web.console import ConsoleError, check, ctx, html, who
from fazai.web.sparkline import svg

TABS = ("facts", "metrics", "sessions", "alerts", "kb")
METRIC_WINDOW_S = 6 * 3600.0


def _engine(request: Request) -> Any:
    return request.app.state.manager.store.engine


def add_fleet_pages(r: APIRouter, settings: Any) -> None:
    """``/console/fleet``, ``/console/fleet/{name}`` and ``/console/playbooks``."""
    offline_after = settings.nodes.offline_after_s

    @r.get("/fleet")
    async def fleet(request: Request) -> Response:
        caller = await who(request)
        acc = request.app.state.access
        engine = _engine(request)
        error = None
        try:
            nodes = await Inventory(engine).list()
        except Exception as e:  # a store without the inventory tables: say so, not a 500
            nodes, error = [], f"the fleet inventory cannot be read: {e}"
        shown = [n for n in nodes if acc.may(caller, "fleet.read", fd.node_scope(n))]
        open_ = await fd.open_alerts(engine, shown) if shown else fd.NodeAlerts()
        rows = [
            {"node": n, "status": n.status(offline_after), "alerts": len(open_.by_node.get(n.name, []))}
            for n in shown
        ]
        totals = {
            "nodes": len(rows),
            "online": sum(r["status"] in ("online", "seen") for r in rows),
            "offline": sum(r["status"] == "offline" for r in rows),
            "alerts": sum(r["alerts"] for r in rows),
        }
        return html(
            "fleet.html",
            **ctx(request, caller, groups=fd.group_nodes(rows), totals=totals, error=error,
                  offline_after=offline_after, open_window_h=int(fd.OPEN_ALERT_S // 3600)),
        )  # fmt: skip

    @r.get("/fleet/{name}")
    async def node_page(name: str, request: Request, tab: str = "facts") -> Response:
        caller = await who(request)
        if tab not in TABS:
            raise ConsoleError(400, f"unknown tab {tab!r}: one of {', '.join(TABS)}")
        engine = _engine(request)
        node = await Inventory(engine).get(name)
        if node is None:
            raise ConsoleError(404, f"no node {name} in the inventory")
        await check(request, caller, "fleet.read", fd.node_scope(node), name)
        acc = request.app.state.access
        tabs = [t for t in TABS if t != "kb" or acc.may(caller, "kb.read")]
        if tab not in tabs:
            await check(request, caller, "kb.read")
        data: dict[str, Any] = {}
        if tab == "metrics":
            data["metrics"], data["metric_node"] = await _metrics(engine, node)
        elif tab == "alerts":
            data["alerts"] = (await fd.open_alerts(engine, [node])).by_node.get(node.name, [])
        elif tab in ("sessions", "kb"):
            readable = await _readable_sessions(request, caller, await fd.node_sessions(engine, node.name))
            data["sessions"] = readable
            if tab == "kb":
                data["kb"] = await fd.kb_used(engine, [s["id"] for s in readable])
        return html(
            "node.html",
            **ctx(request, caller, node=node, status=node.status(offline_after), tab=tab, tabs=tabs,
                  open_window_h=int(fd.OPEN_ALERT_S // 3600), **data),
        )  # fmt: skip

    @r.get("/playbooks")
    async def playbooks(request: Request) -> Response:
        caller = await who(request)
        acc = request.app.state.access
        auto = getattr(request.app.state, "automation", None)
        runs = await auto.runs(200) if auto is not None else []
        sites = await acc.auth.scopes.many([x["session"] for x in runs])
        m = request.app.state.manager
        shown = []
        for run in runs:
            site = sites[run["session"]]
            if not acc.may(caller, "session.read", site):
                continue
            live = m.runs.get(run["session"])
            waiting = []
            for aid, p in list(live.pending.items()) if live else []:
                if p.kind == "approval" and not p.future.done():
                    may = acc.may(caller, "session.approve", site, at_least=approval_role(p.role))
                    waiting.append({"session": run["session"], "action": aid, "role": p.role, "may": may})
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(run["created"]))
            shown.append({**run, "site": str(site), "waiting": waiting, "started": started})
        books = auto.describe() if auto is not None and acc.may(caller, "automation.manage") else None
        if books is not None:
            by_name = {b.name: b for b in auto.books}
            for b in books["playbooks"]:
                pb = by_name.get(b["name"])
                b["site"] = pb.site if pb else ""
                b["approvals"] = {k: v for k, v in (pb.approvals if pb else {}).items() if v}
        pending = sum(len(x["waiting"]) for x in shown)
        return html("playbooks.html", **ctx(request, caller, runs=shown, books=books, pending=pending))


async def _metrics(engine: Any, node: NodeRecord) -> tuple[list[dict[str, Any]], str]:
    """Each metric of the node: now, min, max over the window, and its sparkline."""
    store = MetricStore(engine)
    metric_node = node.name
    latest = await store.latest(metric_node)
    if not latest and node.transport == "local":
        # This machine's own samples are stored under its hostname (fazai.telemetry.local).
        metric_node = local_node_name()
        latest = await store.latest(metric_node)
    since = time.time() - METRIC_WINDOW_S
    out = []
    for (_n, name), (ts, value) in sorted(latest.items()):
        pts = await store.series(metric_node, name, since)
        values = [p.value for p in pts] or [value]
        out.append({
            "name": name, "now": value, "at": time.strftime("%H:%M:%S", time.gmtime(ts)),
            "min": min(values), "max": max(values), "n": len(pts), "chart": svg(pts, label=name),
        })  # fmt: skip
    return out, metric_node


async def _readable_sessions(
    request: Request, caller: Any, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    acc = request.app.state.access
    sites = await acc.auth.scopes.many([s["id"] for s in rows])
    return [
        {**s, "site": str(sites[s["id"]])} for s in rows if acc.may(caller, "session.read", sites[s["id"]])
    ]
