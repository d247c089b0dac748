"""What a playbook run acts through: nodes (targets), firewalls, the safety policy, the protected
addresses, an HTTP client and, in the daemon, a way to open agent sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from fazai.opnsense.firewall import Firewall
from fazai.playbooks.guards import Protected
from fazai.safety import SafetyPolicy
from fazai.targets.base import Target

# (goal, max_iterations) -> {"session", "status", "answer"}
AgentStarter = Callable[[str, int | None], Awaitable[dict[str, Any]]]
FirewallOpener = Callable[[str | None], Awaitable[Firewall]]


class FirewallPool:
    """Connected firewalls by name, opened on first use (``None`` = the only registered one)."""

    def __init__(self, opener: FirewallOpener):
        self._opener = opener
        self._open: dict[str | None, Firewall] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def of(cls, firewalls: Mapping[str, Firewall]) -> FirewallPool:
        """A pool over firewalls already connected (the only one is also the default)."""

        async def opener(name: str | None) -> Firewall:
            if name is None and len(firewalls) == 1:
                return next(iter(firewalls.values()))
            if name not in firewalls:
                known = ", ".join(sorted(firewalls)) or "none"
                raise LookupError(f"no firewall {name!r} (registered: {known}); see `fazai opnsense list`")
            return firewalls[name]

        return cls(opener)

    async def get(self, name: str | None) -> Firewall:
        """The firewall ``name``, connected."""
        async with self._lock:
            if name not in self._open:
                self._open[name] = await self._opener(name)
            return self._open[name]

    async def aclose(self) -> None:
        """Close the connections this pool opened."""
        for fw in self._open.values():
            await fw.client.aclose()
        self._open.clear()


@dataclass
class PlaybookEnv:
    """Everything a run needs besides the playbook and its trigger."""

    policy: SafetyPolicy
    nodes: dict[str, Target] = field(default_factory=dict)
    firewalls: FirewallPool | None = None
    protected: Protected = field(default_factory=Protected)
    agent: AgentStarter | None = None
    http: httpx.AsyncClient | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def node(self, name: str) -> Target:
        """The node ``name``; LookupError naming the known ones."""
        if name not in self.nodes:
            known = ", ".join(sorted(self.nodes)) or "none"
            raise LookupError(f"no node {name!r} (known: {known}; declare it under [playbooks.nodes])")
        return self.nodes[name]

    async def aclose(self) -> None:
        """Close the HTTP client and the firewall connections."""
        if self.http is not None:
            await self.http.aclose()
        if self.firewalls is not None:
            await self.firewalls.aclose()
