"""``/fleet`` routes of fazaid: connected agents, and actions submitted to nodes (asynchronous)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from fazai.fleet.gateway import Fleet
from fazai.fleet.hub import HubError
from fazai.fleet.limits import LimitError


class SubmitAction(BaseModel):
    nodes: list[str] = Field(min_length=1, description="node names; ['*'] = every connected node")
    kind: Literal["command.exec", "file.diff", "file.apply", "file.read", "tool.run"] = "command.exec"
    spec: dict[str, Any]
    session: str | None = None


def _fleet(request: Request) -> Fleet:
    fleet = getattr(request.app.state, "fleet", None)
    if fleet is None:
        raise HTTPException(409, "the fleet gateway is off: set [fleet] enabled = true and restart fazaid")
    return fleet


def router() -> APIRouter:
    """The fleet routes (mounted with the daemon's bearer-token dependency)."""
    r = APIRouter(prefix="/fleet")

    @r.get("/agents")
    async def agents(request: Request) -> dict[str, Any]:
        fleet = _fleet(request)
        out: dict[str, Any] = {
            "enrolled": await fleet.registry.agents(),
            "connected": fleet.hub.snapshot(),
            "counters": fleet.hub.counters,
            "orgs": fleet.hub.limiter.snapshot(),
        }
        if fleet.hub.relay is not None:
            relay = fleet.hub.relay
            out["replica"] = relay.replica
            out["relay"] = relay.counters
            out["routes"] = await relay.routes.holders(None, relay.stale_s)
        return out

    @r.post("/actions", status_code=202)
    async def submit(body: SubmitAction, request: Request) -> list[dict[str, str]]:
        hub = _fleet(request).hub
        if body.nodes == ["*"]:
            nodes = set(hub.conns)
            if hub.relay is not None:  # replicas: every node connected to any live replica
                nodes |= set(await hub.relay.routes.holders(None, hub.relay.stale_s))
            body.nodes = sorted(nodes)
        nodes = body.nodes
        try:
            states = await hub.submit(nodes, body.kind, body.spec, session=body.session)
        except LimitError as e:  # an organisation's queue is full: try again later
            raise HTTPException(429, str(e)) from e
        except (HubError, ValueError) as e:
            raise HTTPException(422, str(e)) from e
        return [{"id": s.id, "node": s.node} for s in states]

    @r.get("/actions/{action}")
    async def get_action(
        action: str, request: Request, wait: float = Query(0, ge=0, le=600, description="seconds to wait")
    ) -> dict[str, Any]:
        hub = _fleet(request).hub
        try:
            if wait:
                try:
                    return await hub.wait(action, wait)
                except TimeoutError:
                    pass
            row = await hub.actions.get(action)
        except HubError as e:
            raise HTTPException(404, str(e)) from e
        if row is None:
            raise HTTPException(404, f"no action {action}")
        if (why := hub.waiting(action)) is not None:
            row = {**row, "waiting": why}
        return row

    @r.post("/revoked")
    async def revoked(request: Request) -> dict[str, bool]:
        """Nudge: a revocation was written; the watch picks it up within [fleet] revocation_poll_s."""
        _fleet(request)
        await asyncio.sleep(0)
        return {"ok": True}

    return r
