"""Per-organisation limits of the fleet: how many actions an organisation's nodes run at once.

The hub already caps each node (``min(agent max_concurrent, [fleet] max_concurrent)``) and each
connection (credits). This adds the organisation (the inventory's org → site → group → node): one
tenant's fan-out to 5,000 nodes must not take every slot of a shared fazaid. Over the cap an action
stays **queued** (its ``waiting`` says why) and is sent as soon as one of the organisation's actions
finishes; past ``[fleet] org_max_queued`` waiting actions a new submission is **refused** with
:class:`LimitError` (HTTP 429), saying which organisation and which setting.

A node's organisation is read from the inventory (a node not in it belongs to ``default``): the
whole map once, then the submitted nodes again at each submission, so a node moved to another
organisation counts there from its next action. With no limit configured nothing is read at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.config import FleetSettings

DEFAULT_ORG = "default"  # as fazai.store.inventory.DEFAULT_ORG


class LimitError(Exception):
    """A submission would go past an organisation's limit; the message names the setting to change."""


class OrgLimiter:
    """Running actions per organisation, against ``[fleet] org_max_concurrent`` / ``org_limits``."""

    def __init__(self, settings: FleetSettings):
        self.settings = settings
        self.org_of: dict[str, str] = {}
        self.running: dict[str, set[str]] = {}  # org -> ids of actions sent and not finished
        self.waiting: dict[str, dict[str, None]] = {}  # org -> nodes held back (ordered: fair)
        self.held: dict[str, str] = {}  # action id -> why it waits
        self._loaded = False

    @property
    def enabled(self) -> bool:
        s = self.settings
        return bool(s.org_max_concurrent or s.org_limits or s.org_max_queued)

    def cap(self, org: str) -> int:
        """Running actions allowed at once for ``org`` (0 = no cap)."""
        return self.settings.org_limits.get(org, self.settings.org_max_concurrent)

    def org(self, node: str) -> str:
        return self.org_of.get(node, DEFAULT_ORG)

    async def refresh(self, engine: AsyncEngine, nodes: Iterable[str] | None = None) -> None:
        """Read the organisations of ``nodes`` (all nodes the first time) from the inventory."""
        if not self.enabled:
            return
        from fazai.store.inventory_schema import inv_nodes, inv_orgs

        names = None if not self._loaded or nodes is None else sorted(set(nodes))
        q = select(inv_nodes.c.name, inv_orgs.c.name).join(inv_orgs, inv_nodes.c.org_id == inv_orgs.c.id)
        async with engine.connect() as conn:
            if names is None:
                rows: list[Any] = list((await conn.execute(q)).all())
            else:
                rows = []
                for i in range(0, len(names), 500):  # bound the bind parameters per statement
                    rows += (await conn.execute(q.where(inv_nodes.c.name.in_(names[i : i + 500])))).all()
        self.org_of.update({node: org for node, org in rows})
        self._loaded = True

    def check_submit(self, nodes: list[str], queued: Iterable[str]) -> None:
        """Refuse ``nodes``' new actions when their organisation already has ``org_max_queued`` waiting
        (``queued``: the nodes of the actions not sent yet, one entry per action)."""
        limit = self.settings.org_max_queued
        if not limit:
            return
        have: dict[str, int] = {}
        for node in queued:
            org = self.org(node)
            have[org] = have.get(org, 0) + 1
        new: dict[str, int] = {}
        for node in nodes:
            org = self.org(node)
            new[org] = new.get(org, 0) + 1
        for org, n in sorted(new.items()):
            if have.get(org, 0) + n > limit:
                raise LimitError(
                    f"organisation {org!r} has {have.get(org, 0)} actions waiting and this adds {n}: "
                    f"over [fleet] org_max_queued = {limit}; wait for them to finish, send to fewer "
                    "nodes, or raise the limit"
                )

    def admit(self, node: str, action: str) -> bool:
        """Take a running slot of ``node``'s organisation for ``action``; False (and noted) when full."""
        if not self.enabled:
            return True
        org = self.org(node)
        cap = self.cap(org)
        running = self.running.setdefault(org, set())
        if cap and action not in running and len(running) >= cap:
            self.waiting.setdefault(org, {})[node] = None
            self.held[action] = (
                f"queued: organisation {org!r} runs {len(running)} actions, its limit "
                f"([fleet] {'org_limits' if org in self.settings.org_limits else 'org_max_concurrent'}) "
                f"is {cap}; sent when one of them finishes"
            )
            return False
        running.add(action)
        self.held.pop(action, None)
        return True

    def release(self, node: str, action: str) -> list[str]:
        """``action`` no longer runs: the nodes of its organisation that waited for a slot, to pump."""
        self.held.pop(action, None)
        if not self.enabled:
            return []
        org = self.org(node)
        running = self.running.get(org)
        if running is None or action not in running:
            return []
        running.discard(action)
        waiting = self.waiting.pop(org, None)
        return list(waiting) if waiting else []

    def forget(self, action: str) -> None:
        """``action`` is gone before it was sent (cancelled, revoked)."""
        self.held.pop(action, None)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{org: {"running": n, "cap": c}}`` for the API."""
        items = sorted(self.running.items())
        return {org: {"running": len(ids), "cap": self.cap(org)} for org, ids in items if ids}
