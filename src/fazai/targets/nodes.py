"""From an inventory node to the target that reaches it, one target per node, reused across runs.

``ssh`` nodes get an :class:`~fazai.targets.ssh.SSHTarget` (``[ssh]`` settings, the node's address,
port and user); ``local`` nodes a :class:`~fazai.targets.local.LocalTarget`; ``agent`` nodes whatever
the agent gateway registered in :attr:`NodeTargets.transports` (fazaid's gateway, where
``fazai-agent`` connects). A node that cannot be reached now raises :class:`NodeUnavailable` with the
reason (unknown, offline, unreachable, host key refused, no gateway), so callers report it — never
drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fazai.config import Settings
from fazai.store.inventory import Inventory, InventoryError, NodeRecord
from fazai.targets.base import Target, TargetError
from fazai.targets.local import LocalTarget
from fazai.targets.ssh import SSHTarget

# (node) -> its target; may be a coroutine function. The agent gateway registers one for "agent".
TransportFactory = Callable[[NodeRecord], Target | Awaitable[Target]]


class NodeUnavailable(TargetError):
    """The node cannot be worked on now. ``reason``: unknown | offline | unreachable | unsupported."""

    def __init__(self, node: str, reason: str, message: str):
        super().__init__(message)
        self.node = node
        self.reason = reason


def ssh_target(node: NodeRecord, settings: Settings) -> SSHTarget:
    """The ssh target of ``node`` with the ``[ssh]`` settings."""
    s = settings.ssh
    return SSHTarget(
        node.address or node.name,
        name=node.name,
        port=node.port or 22,
        user=node.user or s.user,
        key_path=settings.ssh_key,
        known_hosts=settings.ssh_known_hosts,
        connect_timeout_s=s.connect_timeout_s,
        keepalive_s=s.keepalive_s,
        max_output_bytes=s.max_output_bytes,
    )


class NodeTargets:
    """The targets of inventory nodes for this process (the daemon or an embedded CLI)."""

    def __init__(
        self,
        settings: Settings,
        inventory: Inventory,
        *,
        transports: dict[str, TransportFactory] | None = None,
    ):
        self.settings = settings
        self.inventory = inventory
        self.transports: dict[str, TransportFactory] = dict(transports or {})
        # Per transport: whether the node is connected right now. Heard-from times are written in
        # batches, so a node that has just connected can be live before its heartbeat is stored.
        self.live: dict[str, Callable[[str], Awaitable[bool]]] = {}
        self._pool: dict[str, tuple[tuple[Any, ...], Target]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def target_for(self, name: str, *, probe: bool = True) -> tuple[NodeRecord, Target]:
        """The node's record and its (reused) target; with ``probe``, it has just answered.

        :class:`NodeUnavailable` when it cannot be reached, with the reason and what to do.
        """
        try:
            node = await self.inventory.require(name)
        except InventoryError as e:
            raise NodeUnavailable(name, "unknown", str(e)) from e
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            target = await self._target(node)
            if probe:
                await self._probe(node, target)
        return node, target

    async def _target(self, node: NodeRecord) -> Target:
        key = (node.transport, node.address, node.port, node.user)
        held = self._pool.get(node.name)
        if held is not None and held[0] == key:
            return held[1]
        if held is not None:  # the node's address or transport changed: drop the old connection
            await _close(held[1])
        if node.transport == "ssh":
            target: Target = ssh_target(node, self.settings)
        elif node.transport == "local":
            target = LocalTarget(name=node.name)
        else:
            factory = self.transports.get(node.transport)
            if factory is None:
                raise NodeUnavailable(
                    node.name,
                    "unsupported",
                    f"node {node.name} is reached by its {node.transport} and this process has no "
                    f"{node.transport} gateway: run the command through fazaid (where fazai-agent "
                    "connects), or register the node for ssh",
                )
            age = node.seconds_since_heard()
            limit = self.settings.nodes.offline_after_s
            live = self.live.get(node.transport)
            if (age is None or age > limit) and not (live is not None and await live(node.name)):
                seen = "never heard from" if age is None else f"last heard from {age:.0f}s ago"
                raise NodeUnavailable(
                    node.name, "offline", f"node {node.name} is offline ({seen}; limit {limit:g}s)"
                )
            made = factory(node)
            target = await made if inspect.isawaitable(made) else made
        self._pool[node.name] = (key, target)
        return target

    async def _probe(self, node: NodeRecord, target: Target) -> None:
        if not isinstance(target, SSHTarget) or target.connected:
            return
        try:
            await target.connect()
        except TargetError as e:
            raise NodeUnavailable(node.name, "unreachable", f"node {node.name} is unreachable: {e}") from e
        # A login worked: the node was heard from.
        with contextlib.suppress(Exception):
            await self.inventory.heartbeat(node.name)

    async def forget(self, name: str) -> None:
        """Close and drop the node's target (after ``nodes rm`` or an address change)."""
        held = self._pool.pop(name, None)
        if held is not None:
            await _close(held[1])

    async def aclose(self) -> None:
        """Close every connection."""
        for name in list(self._pool):
            await self.forget(name)


async def _close(target: Any) -> None:
    close = getattr(target, "close", None) or getattr(target, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            res = close()
            if inspect.isawaitable(res):
                await res
