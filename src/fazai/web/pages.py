"""Console pages over other parts of FazAI: knowledge base, audit trail (fleet: fleet_pages)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from fazai.web.console import ConsoleError, check, ctx, html, who


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

    from fazai.web.fleet_pages import add_fleet_pages

    add_fleet_pages(r, settings)


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
