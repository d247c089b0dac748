"""Console pages over other parts of FazAI: knowledge base, audit trail, fleet inventory."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import MetaData, Table, inspect, select

from fazai.auth import Scope
from fazai.web.console import ConsoleError, check, ctx, html, who

# Table names the fleet inventory may use (it is built separately); the first that exists is shown.
INVENTORY_TABLES = ("fleet_nodes", "inventory_nodes", "nodes")


def _kb_access(request: Request) -> Any:
    loop = request.app.state.manager.loop()
    return getattr(loop, "kb_access", None)


def add_pages(r: APIRouter, settings: Any) -> None:
    """Knowledge, audit and fleet pages."""

    @r.get("/kb")
    async def kb_page(request: Request, q: str = "", status: str = "") -> Response:
        caller = await who(request)
        await check(request, caller, "kb.read")
        may_review = _access_may(request, caller, "kb.review")
        kba = _kb_access(request) if settings.kb.enabled else None
        if kba is None:
            return html("kb.html", **ctx(request, caller, enabled=False, items=[], q=q, status=status))
        if status not in ("", "verified", "unverified", "rejected"):
            raise ConsoleError(400, "status must be verified, unverified or rejected")

        def query() -> list[dict[str, Any]]:
            from fazai.knowledge.kb import KBFilters

            flt = KBFilters(status=status) if status else None
            with kba.session() as kb:
                if q.strip():
                    return [_item(h.item, h.similarity) for h in kb.search(q, flt, k=20)]
                return [_item(i, None) for i in kb.list_items(flt, limit=100)]

        error = None
        try:
            items = await asyncio.to_thread(query)
        except Exception as e:  # a locked or broken store: say so on the page
            items, error = [], f"the knowledge base cannot be read now: {e}"
        return html(
            "kb.html",
            **ctx(
                request,
                caller,
                enabled=True,
                items=items,
                q=q,
                status=status,
                may_review=may_review,
                error=error,
            ),
        )

    @r.post("/kb/{item_id}/review")
    async def kb_review(
        item_id: str, request: Request, decision: str = Form(""), csrf: str = Form("")
    ) -> Response:
        caller = await who(request, csrf_form=csrf)
        await check(request, caller, "kb.review", target=item_id)
        if decision not in ("verify", "reject"):
            raise ConsoleError(400, "decision must be verify or reject")
        kba = _kb_access(request) if settings.kb.enabled else None
        if kba is None:
            raise ConsoleError(409, "the knowledge base is disabled")

        def apply() -> None:
            with kba.session() as kb:
                if decision == "verify":
                    kb.verify(item_id, evidence=f"verified in the console by {caller.principal.name}")
                else:
                    kb.reject(item_id, reason=f"rejected in the console by {caller.principal.name}")

        try:
            await asyncio.to_thread(apply)
        except Exception as e:
            raise ConsoleError(400, f"cannot {decision} {item_id}: {e}") from e
        await request.app.state.access.record(caller, f"kb.{decision}", item_id)
        return RedirectResponse("/console/kb", status_code=303)

    @r.get("/audit")
    async def audit_page(request: Request) -> Response:
        caller = await who(request)
        await check(request, caller, "audit.read")
        log = request.app.state.access.audit
        records, verify = await log.recent(200), await log.verify(advance=True)
        return html("audit.html", **ctx(request, caller, records=records, verify=verify))

    @r.get("/fleet")
    async def fleet(request: Request) -> Response:
        caller = await who(request)
        nodes, found = await _nodes(request)
        acc = request.app.state.access
        shown = [n for n in nodes if acc.may(caller, "fleet.read", n["scope"])]
        return html("fleet.html", **ctx(request, caller, nodes=shown, inventory=found))

    @r.get("/fleet/{node_id}")
    async def node(node_id: str, request: Request) -> Response:
        caller = await who(request)
        nodes, _ = await _nodes(request)
        match = [n for n in nodes if str(n["id"]) == node_id]
        if not match:
            raise ConsoleError(404, f"no node {node_id}")
        await check(request, caller, "fleet.read", match[0]["scope"], node_id)
        return html("node.html", **ctx(request, caller, node=match[0]))


def _access_may(request: Request, caller: Any, action: str) -> bool:
    return request.app.state.access.may(caller, action)


def _item(item: Any, score: float | None) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "status": item.status,
        "tags": item.tags,
        "snippet": item.snippet,
        "notes": item.notes,
        "score": score,
    }


async def _nodes(request: Request) -> tuple[list[dict[str, Any]], bool]:
    """Nodes of the inventory when its table exists (read generically: its schema is not ours)."""
    engine = request.app.state.manager.store.engine
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        table = next((t for t in INVENTORY_TABLES if t in names), None)
        if table is None:
            return [], False
        t = await conn.run_sync(lambda c: Table(table, MetaData(), autoload_with=c))
        rows = (await conn.execute(select(t).limit(1000))).mappings().all()
    out = []
    for row in rows:
        d = dict(row)
        org, site = str(d.get("org") or "default"), str(d.get("site") or "default")
        out.append(
            {
                "id": d.get("id") or d.get("name"),
                "name": d.get("name") or d.get("hostname") or d.get("id"),
                "org": org,
                "site": site,
                "group": d.get("group") or d.get("node_group") or "",
                "state": d.get("state") or d.get("status") or "",
                "last_seen": d.get("last_seen") or d.get("last_heartbeat") or "",
                "scope": Scope(org, site),
                "raw": {k: v for k, v in d.items() if "secret" not in k and "key" not in k},
            }
        )
    return out, True
