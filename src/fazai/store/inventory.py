"""The inventory: organisation → site → group → node, with tags, labels, transport and liveness.

Tables ``inv_orgs``, ``inv_sites``, ``inv_groups``, ``inv_nodes`` (migration ``0005``). An org, site or
group is created the first time a node names it. A node's ``transport`` says how FazAI reaches it:
``agent`` (``fazai-agent`` dials in), ``ssh`` (FazAI logs in) or ``local`` (this machine).
``last_heartbeat`` is the last time the node was heard from: an agent heartbeat, or a successful
ssh login/check.

The fleet gateway calls :meth:`Inventory.upsert_node` on an agent's hello and :meth:`Inventory.heartbeat`
on each heartbeat; the CLI and ``/nodes`` use the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fazai.protocol import utcnow_iso
from fazai.store.inventory_schema import inv_groups, inv_nodes, inv_orgs, inv_sites
from fazai.store.selector import Selector, parse_selector

TRANSPORTS = ("agent", "ssh", "local")
DEFAULT_ORG = "default"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$")
_LABEL_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
RESERVED_LABELS = frozenset({"name", "org", "site", "group", "transport", "tag"})


class InventoryError(ValueError):
    """Bad inventory input or a missing node; the message says what to do."""


@dataclass
class NodeRecord:
    """One node of the inventory (``facts`` is the last snapshot, or None)."""

    name: str
    transport: str
    org: str = DEFAULT_ORG
    site: str | None = None
    group: str | None = None
    address: str | None = None
    port: int | None = None
    user: str | None = None
    tags: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    last_heartbeat: str | None = None
    facts: dict[str, Any] | None = None
    facts_at: str | None = None
    created_at: str = ""
    updated_at: str = ""

    def seconds_since_heard(self, now: datetime | None = None) -> float | None:
        """Seconds since ``last_heartbeat`` (None when never heard from)."""
        if not self.last_heartbeat:
            return None
        then = datetime.fromisoformat(self.last_heartbeat.replace("Z", "+00:00"))
        return ((now or datetime.now(UTC)) - then).total_seconds()

    def status(self, offline_after_s: float, now: datetime | None = None) -> str:
        """Agent nodes: ``online`` / ``offline`` by their heartbeat (``never seen`` before the first).
        ssh and local nodes are reached on demand: ``unknown`` until a login worked, then ``seen``."""
        age = self.seconds_since_heard(now)
        if self.transport == "agent":
            return "never seen" if age is None else ("online" if age <= offline_after_s else "offline")
        return "unknown" if age is None else "seen"

    def fields(self) -> dict[str, str | None]:
        """What a selector's field keys read."""
        return {"name": self.name, "org": self.org, "site": self.site, "group": self.group,
                "transport": self.transport}  # fmt: skip

    def to_dict(self, *, facts: bool = False, offline_after_s: float | None = None) -> dict[str, Any]:
        """JSON-ready; the facts snapshot only with ``facts``; ``status`` when a threshold is given."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "facts"}
        if facts:
            d["facts"] = self.facts
        if offline_after_s is not None:
            d["status"] = self.status(offline_after_s)
        return d


def _check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InventoryError(
            f"{name!r} is not a valid node name: letters, digits, '.', '_' and '-', starting with a "
            "letter or digit (e.g. web-01)"
        )
    return name


def _check_part(kind: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not _PART.match(value):
        raise InventoryError(f"{value!r} is not a valid {kind} name (letters, digits, '.', '_', '-')")
    return value


def check_tags(tags: Iterable[str]) -> list[str]:
    """Validated tags (sorted, unique)."""
    out = set()
    for t in tags:
        if not _TAG.match(t):
            raise InventoryError(f"{t!r} is not a valid tag (letters, digits and _ . : / -; no '=' or ',')")
        out.add(t)
    return sorted(out)


def check_labels(labels: Mapping[str, str | None]) -> dict[str, str | None]:
    """Validated labels (a None value removes the key in :meth:`Inventory.retag`)."""
    for k, v in labels.items():
        if not _LABEL_KEY.match(k) or k in RESERVED_LABELS:
            raise InventoryError(
                f"{k!r} cannot be a label key: use letters, digits, _ . - (and not one of "
                f"{', '.join(sorted(RESERVED_LABELS))})"
            )
        if v is not None and (not v or "," in v or len(v) > 200):
            raise InventoryError(f"label {k}={v!r}: the value must be 1-200 characters without ','")
    return dict(labels)


class Inventory:
    """Inventory queries on the store's engine (``Inventory(store.engine)``)."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    # -- reads ------------------------------------------------------------------------------

    def _select(self) -> Any:
        return (
            select(
                inv_nodes,
                inv_orgs.c.name.label("org_name"),
                inv_sites.c.name.label("site_name"),
                inv_groups.c.name.label("group_name"),
            )
            .join(inv_orgs, inv_nodes.c.org_id == inv_orgs.c.id)
            .outerjoin(inv_sites, inv_nodes.c.site_id == inv_sites.c.id)
            .outerjoin(inv_groups, inv_nodes.c.group_id == inv_groups.c.id)
        )

    @staticmethod
    def _record(row: Any) -> NodeRecord:
        m = row._mapping
        return NodeRecord(
            name=m["name"], transport=m["transport"], org=m["org_name"], site=m["site_name"],
            group=m["group_name"], address=m["address"], port=m["port"], user=m["ssh_user"],
            tags=list(m["tags"] or []), labels=dict(m["labels"] or {}), version=m["version"],
            last_heartbeat=m["last_heartbeat"], facts=m["facts"], facts_at=m["facts_at"],
            created_at=m["created_at"], updated_at=m["updated_at"],
        )  # fmt: skip

    async def get(self, name: str) -> NodeRecord | None:
        """The node called ``name``, or None."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(self._select().where(inv_nodes.c.name == name))).first()
        return self._record(row) if row else None

    async def require(self, name: str) -> NodeRecord:
        """The node called ``name``; :class:`InventoryError` naming the fix when there is none."""
        rec = await self.get(name)
        if rec is None:
            raise InventoryError(f"no node {name!r} in the inventory (see `fazai nodes list`; add one with "
                                 "`fazai nodes add NAME --ssh HOST`)")  # fmt: skip
        return rec

    async def list(self, selector: Selector | str | None = None) -> list[NodeRecord]:
        """Nodes (by name) matching ``selector`` (all when None)."""
        sel = parse_selector(selector) if isinstance(selector, str) else selector
        async with self.engine.connect() as conn:
            rows = (await conn.execute(self._select().order_by(inv_nodes.c.name))).all()
        nodes = [self._record(r) for r in rows]
        if sel is None:
            return nodes
        return [n for n in nodes if sel.matches(n.fields(), n.tags, n.labels)]

    # -- hierarchy --------------------------------------------------------------------------

    async def _ids(
        self, conn: AsyncConnection, org: str, site: str | None, group: str | None
    ) -> tuple[int, int | None, int | None]:
        """Ids of org/site/group, created when missing (a group needs a site)."""
        if group is not None and site is None:
            raise InventoryError(f"group {group!r} needs a site: give --site too")
        now = utcnow_iso()
        org_id = await _get_or_create(conn, inv_orgs, {"name": org}, now)
        site_id = (
            await _get_or_create(conn, inv_sites, {"org_id": org_id, "name": site}, now) if site else None
        )
        group_id = (
            await _get_or_create(conn, inv_groups, {"site_id": site_id, "name": group}, now)
            if group
            else None
        )
        return org_id, site_id, group_id

    # -- writes -----------------------------------------------------------------------------

    async def add_node(
        self,
        name: str,
        *,
        transport: str,
        address: str | None = None,
        port: int | None = None,
        user: str | None = None,
        org: str = DEFAULT_ORG,
        site: str | None = None,
        group: str | None = None,
        tags: Iterable[str] = (),
        labels: Mapping[str, str] | None = None,
    ) -> NodeRecord:
        """Register a new node; :class:`InventoryError` when the name is taken or input is bad."""
        _check_name(name)
        if transport not in TRANSPORTS:
            raise InventoryError(f"unknown transport {transport!r}: one of {', '.join(TRANSPORTS)}")
        if transport == "ssh" and not address:
            raise InventoryError(f"node {name}: an ssh node needs an address (--ssh HOST)")
        if port is not None and not 0 < port < 65536:
            raise InventoryError(f"port {port} is out of range (1-65535)")
        for kind, v in (("org", org), ("site", site), ("group", group)):
            _check_part(kind, v)
        lab = check_labels(labels or {})
        now = utcnow_iso()
        try:
            async with self.engine.begin() as conn:
                org_id, site_id, group_id = await self._ids(conn, org, site, group)
                await conn.execute(
                    insert(inv_nodes).values(
                        name=name,
                        org_id=org_id,
                        site_id=site_id,
                        group_id=group_id,
                        transport=transport,
                        address=address,
                        port=port,
                        ssh_user=user,
                        tags=check_tags(tags),
                        labels=lab,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError as e:
            raise InventoryError(
                f"a node called {name!r} already exists (see `fazai nodes show {name}`)"
            ) from e
        return await self.require(name)

    async def upsert_node(
        self,
        name: str,
        *,
        transport: str = "agent",
        org: str | None = None,
        site: str | None = None,
        group: str | None = None,
        address: str | None = None,
        version: str | None = None,
        heartbeat_at: str | None = None,
        facts: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> NodeRecord:
        """Create the node or update the fields given (None = leave as is). For the agent gateway's hello.

        ``heartbeat_at`` (ISO-8601 UTC, e.g. ``protocol.utcnow_iso()``) marks it heard from; ``tags``
        and ``labels`` replace the node's own when given (operator tags are kept by passing None).
        """
        existing = await self.get(_check_name(name))
        if existing is None:
            rec = await self.add_node(
                name, transport=transport, address=address, org=org or DEFAULT_ORG, site=site,
                group=group, tags=tags or (), labels=labels,
            )  # fmt: skip
            existing = rec
        values: dict[str, Any] = {"updated_at": utcnow_iso(), "transport": transport}
        if transport not in TRANSPORTS:
            raise InventoryError(f"unknown transport {transport!r}: one of {', '.join(TRANSPORTS)}")
        for key, val in (("address", address), ("version", version), ("last_heartbeat", heartbeat_at)):
            if val is not None:
                values[key] = val
        if facts is not None:
            values["facts"], values["facts_at"] = dict(facts), heartbeat_at or utcnow_iso()
        if tags is not None:
            values["tags"] = check_tags(tags)
        if labels is not None:
            values["labels"] = {k: v for k, v in check_labels(labels).items() if v is not None}
        async with self.engine.begin() as conn:
            if org is not None or site is not None or group is not None:
                for kind, v in (("org", org), ("site", site), ("group", group)):
                    _check_part(kind, v)
                org_id, site_id, group_id = await self._ids(
                    conn, org or existing.org, site if site is not None else existing.site, group
                )
                values.update(org_id=org_id, site_id=site_id, group_id=group_id)
            await conn.execute(update(inv_nodes).where(inv_nodes.c.name == name).values(**values))
        return await self.require(name)

    async def heartbeat(self, name: str, *, at: str | None = None, version: str | None = None) -> bool:
        """Mark the node heard from now (or ``at``); False when there is no such node."""
        values: dict[str, Any] = {"last_heartbeat": at or utcnow_iso()}
        if version is not None:
            values["version"] = version
        async with self.engine.begin() as conn:
            res = await conn.execute(update(inv_nodes).where(inv_nodes.c.name == name).values(**values))
        return bool(res.rowcount)

    async def set_facts(self, name: str, facts: Mapping[str, Any], *, at: str | None = None) -> bool:
        """Store a facts snapshot (``Facts.model_dump()``); False when there is no such node."""
        now = at or utcnow_iso()
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(inv_nodes).where(inv_nodes.c.name == name).values(facts=dict(facts), facts_at=now)
            )
        return bool(res.rowcount)

    async def retag(
        self,
        name: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        labels: Mapping[str, str | None] | None = None,
    ) -> NodeRecord:
        """Add/remove tags and set labels (a None value removes that label)."""
        rec = await self.require(name)
        tags = set(rec.tags) | set(check_tags(add))
        tags -= set(remove)
        lab = dict(rec.labels)
        for k, v in check_labels(labels or {}).items():
            if v is None:
                lab.pop(k, None)
            else:
                lab[k] = v
        async with self.engine.begin() as conn:
            await conn.execute(
                update(inv_nodes)
                .where(inv_nodes.c.name == name)
                .values(tags=sorted(tags), labels=lab, updated_at=utcnow_iso())
            )
        return await self.require(name)

    async def remove(self, name: str) -> bool:
        """Delete the node (its sessions stay in the log); False when there was none."""
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(inv_nodes).where(inv_nodes.c.name == name))
        return bool(res.rowcount)


async def _get_or_create(conn: AsyncConnection, table: Table, keys: dict[str, Any], now: str) -> int:
    cond = [table.c[k] == v for k, v in keys.items()]
    found = (await conn.execute(select(table.c.id).where(*cond))).scalar()
    if found is not None:
        return int(found)
    # Two writers may both see no row (an agent's hello upserts while an operator adds nodes): the
    # insert gives way to the row the other wrote, and that row's id is read back.
    if conn.dialect.name in ("sqlite", "postgresql"):
        dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
        await conn.execute(dialect_insert(table).values(**keys, created_at=now).on_conflict_do_nothing())
        return int((await conn.execute(select(table.c.id).where(*cond))).scalar_one())
    res = await conn.execute(insert(table).values(**keys, created_at=now))
    return int(res.inserted_primary_key[0])
