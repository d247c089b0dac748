"""``/nodes`` (the inventory) and ``/agent/fanout`` (one goal on every node a selector picks).

Behind the daemon's bearer token like every route but ``/healthz``. Bad input answers 400 with the
reason, an unknown node 404, a taken name 409.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from fazai.sessions.fanout import fan_out
from fazai.sessions.manager import RunOptions, SessionManager
from fazai.store.inventory import Inventory, InventoryError
from fazai.store.selector import SelectorError


class NodeIn(BaseModel):
    """``POST /nodes``: register an ssh or local node (agent nodes register themselves)."""

    name: str
    transport: Literal["ssh", "local"] = "ssh"
    address: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    org: str = "default"
    site: str | None = None
    group: str | None = None
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


class NodePatch(BaseModel):
    """``PATCH /nodes/{name}``: tags to add/remove, labels to set (null removes one)."""

    add_tags: list[str] = Field(default_factory=list)
    remove_tags: list[str] = Field(default_factory=list)
    labels: dict[str, str | None] = Field(default_factory=dict)


class FanoutIn(BaseModel):
    """``POST /agent/fanout``: the goal, the selector and the run's options; answers the report."""

    goal: str = Field(min_length=1)
    nodes: str = Field(min_length=1, description="selector, e.g. site=sp,tag=web")
    mode: Literal["agent", "ask", "command"] = Field(
        default="ask", description="command: the goal is one read-only command, run without a model"
    )
    yes: bool = False
    model: str | None = None
    max_iterations: int | None = Field(default=None, ge=1, le=1000)
    concurrency: int | None = Field(default=None, ge=1, le=1000)


def nodes_router(auth: Callable[..., Any]) -> APIRouter:
    """The routes, guarded by the app's ``auth`` dependency."""
    r = APIRouter(dependencies=[Depends(auth)])

    def mgr(request: Request) -> SessionManager:
        return request.app.state.manager

    def inv(request: Request) -> Inventory:
        return Inventory(mgr(request).store.engine)

    def offline_after(request: Request) -> float:
        return mgr(request).settings.nodes.offline_after_s

    @r.get("/nodes")
    async def list_nodes(request: Request, selector: str | None = Query(None)) -> list[dict[str, Any]]:
        try:
            nodes = await inv(request).list(selector)
        except SelectorError as e:
            raise HTTPException(400, str(e)) from e
        return [n.to_dict(offline_after_s=offline_after(request)) for n in nodes]

    @r.get("/nodes/{name}")
    async def show_node(name: str, request: Request, facts: bool = True) -> dict[str, Any]:
        node = await inv(request).get(name)
        if node is None:
            raise HTTPException(404, f"no node {name!r} in the inventory (GET /nodes lists them)")
        return node.to_dict(facts=facts, offline_after_s=offline_after(request))

    @r.post("/nodes", status_code=201)
    async def add_node(body: NodeIn, request: Request) -> dict[str, Any]:
        try:
            node = await inv(request).add_node(**body.model_dump())
        except InventoryError as e:
            raise HTTPException(409 if "already exists" in str(e) else 400, str(e)) from e
        return node.to_dict(offline_after_s=offline_after(request))

    @r.patch("/nodes/{name}")
    async def patch_node(name: str, body: NodePatch, request: Request) -> dict[str, Any]:
        try:
            node = await inv(request).retag(
                name, add=body.add_tags, remove=body.remove_tags, labels=body.labels
            )
        except InventoryError as e:
            raise HTTPException(404 if "no node" in str(e) else 400, str(e)) from e
        return node.to_dict(offline_after_s=offline_after(request))

    @r.delete("/nodes/{name}")
    async def delete_node(name: str, request: Request) -> dict[str, Any]:
        if not await inv(request).remove(name):
            raise HTTPException(404, f"no node {name!r} in the inventory")
        await mgr(request).nodes.forget(name)
        return {"name": name, "removed": True}

    @r.post("/agent/fanout")
    async def fanout(body: FanoutIn, request: Request) -> dict[str, Any]:
        opts = RunOptions(yes=body.yes, max_iterations=body.max_iterations, model=body.model, mode=body.mode)
        try:
            report = await fan_out(mgr(request), body.nodes, body.goal, opts, concurrency=body.concurrency)
        except SelectorError as e:
            raise HTTPException(400, str(e)) from e
        return report.to_dict()

    return r
