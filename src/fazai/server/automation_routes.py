"""``fazaid`` routes of telemetry and playbooks: alerts in, metrics in and out, playbook runs."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from fazai.auth import Scope
from fazai.opnsense.alerts import parse_eve_record
from fazai.playbooks.context import alert_context
from fazai.sessions.automation import Automation
from fazai.telemetry.tables import alerts


class AlertsIn(BaseModel):
    """EVE records (``records``) or raw eve.json lines (``lines``) from one source."""

    source: str = Field(default="http", min_length=1, max_length=200)
    records: list[dict[str, Any]] = Field(default_factory=list)
    lines: list[str] = Field(default_factory=list)


class MetricsIn(BaseModel):
    node: str = Field(min_length=1, max_length=200)
    values: dict[str, float]
    ts: float | None = None


class NodeStateIn(BaseModel):
    node: str = Field(min_length=1, max_length=200)
    state: str = Field(min_length=1, max_length=50)


class RunIn(BaseModel):
    """Start a playbook by hand: with an EVE alert record, or with a context."""

    alert: dict[str, Any] | None = None
    context: dict[str, Any] = Field(default_factory=dict)


def _auto(request: Request) -> Automation:
    return request.app.state.automation


def router(auth: Any) -> APIRouter:
    """The routes (all behind the daemon's bearer token)."""
    r = APIRouter(dependencies=[Depends(auth)])

    @r.post("/alerts")
    async def post_alerts(body: AlertsIn, request: Request) -> dict[str, Any]:
        a = _auto(request)
        out = await a.ingest_lines(body.source, body.lines) if body.lines else {"sessions": [], "new": []}
        if body.records:
            more = await a.ingest_records(body.source, body.records)
            out = {**more, "new": out["new"] + more["new"], "sessions": out["sessions"] + more["sessions"]}
        return out

    @r.get("/alerts")
    async def list_alerts(request: Request, limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        q = select(alerts).order_by(alerts.c.last_seen.desc()).limit(limit)
        async with _auto(request).manager.store.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [dict(row._mapping) for row in rows]

    @r.get("/telemetry/ingest")
    async def ingest_counters(request: Request) -> dict[str, Any]:
        return {src: ing.counters.as_dict() for src, ing in _auto(request).ingests.items()}

    @r.post("/telemetry/metrics")
    async def post_metrics(body: MetricsIn, request: Request) -> dict[str, Any]:
        try:
            sessions = await _auto(request).record_metrics(body.node, body.values, body.ts)
        except ValueError as e:
            raise HTTPException(422, str(e)) from e
        return {"stored": len(body.values), "sessions": sessions}

    @r.post("/telemetry/node_state")
    async def post_node_state(body: NodeStateIn, request: Request) -> dict[str, Any]:
        return {"sessions": await _auto(request).node_state(body.node, body.state)}

    @r.get("/telemetry/nodes")
    async def nodes(request: Request) -> list[str]:
        return await _auto(request).metrics.nodes()

    @r.get("/telemetry/nodes/{node}")
    async def node_metrics(node: str, request: Request, since: float = Query(3600, gt=0)) -> dict[str, Any]:
        m = _auto(request).metrics
        latest = await m.latest(node)
        if not latest:
            raise HTTPException(404, f"no samples of node {node!r} (nodes: GET /telemetry/nodes)")
        start = time.time() - since
        series = {name: [[p.ts, p.value] for p in await m.series(node, name, start)] for (_, name) in latest}
        now = {name: {"ts": ts, "value": v} for (_, name), (ts, v) in latest.items()}
        return {"node": node, "latest": now, "series": series}

    @r.get("/playbooks")
    async def playbooks(request: Request) -> dict[str, Any]:
        return _auto(request).describe()

    @r.post("/playbooks/reload")
    async def reload(request: Request) -> dict[str, Any]:
        return _auto(request).reload()

    @r.get("/playbooks/runs")
    async def runs(request: Request, limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        return await _auto(request).runs(limit)

    @r.post("/playbooks/{name}/run", status_code=201)
    async def run(name: str, body: RunIn, request: Request) -> dict[str, Any]:
        a = _auto(request)
        pb = next((b for b in a.books if b.name == name), None)
        if pb is None:
            raise HTTPException(404, f"no playbook {name!r} loaded (GET /playbooks lists them)")
        # Started by hand, the run is the caller's: they must be allowed to run sessions on its site.
        acc = request.app.state.access
        await acc.require(await acc.caller(request), "session.run", Scope.parse(pb.site), name)
        alert = None
        ctx = dict(body.context)
        if body.alert is not None:
            try:
                alert = parse_eve_record(body.alert)
            except (KeyError, ValueError) as e:
                raise HTTPException(422, f"the alert is not an EVE alert record: {e}") from e
            if alert is None:
                raise HTTPException(422, "the alert is not an EVE alert record (event_type must be 'alert')")
            ctx = {**alert_context(alert, source="manual"), **ctx}
        ctx.setdefault("summary", f"started by hand at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
        sid = await a.start_playbook(pb, ctx, alert=alert)
        if sid is None:
            raise HTTPException(429, a.skipped[-1]["reason"] if a.skipped else "rate limited")
        return {"session": sid, "playbook": name}

    return r
