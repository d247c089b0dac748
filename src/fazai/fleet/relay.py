"""Fleet actions across fazaid replicas: a command for a node goes to the replica holding its agent.

Several replicas share PostgreSQL and NATS (docs/scale.md). An agent is connected to one of them at
a time; ``agent_routes`` says which (written on attach, before the replica reads the node's open
actions, so a submission racing an attach is seen by one side or the other). A replica that takes a
submission for a node it does not hold:

1. stores the action (``fleet_actions``, state queued) and its ``agent_dispatch`` row
   ``(node, action_id, origin)`` *before* anything is sent — the id is fixed from then on, so a
   retry after a replica dies re-sends the same action, never a second one;
2. asks the holder over NATS request/reply on ``<control_prefix>.<holder>.fleet`` to deliver it; the
   holder loads the row from the store, sends it to the agent and streams output and the final result
   back to the origin on ``<control_prefix>.<origin>.fleet`` (core NATS, best effort);
3. if the holder does not answer (killed), looks the route up again until the agent shows up
   elsewhere or ``[fleet] relay_wait_s`` passes; with no route at all the action waits in the store
   and the replica the agent attaches to next sends it.

The store is the truth: the origin also polls it for the results it waits for, so a notification
lost with a dying replica only costs up to a second. The agent runs an action id at most once (its
journal) and the store keeps the first result (``state`` not yet final), so a command resent after a
failover is neither lost nor run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.fleet.actions import FINAL
from fazai.fleet.schema import agent_dispatch, agent_routes, fleet_actions
from fazai.protocol import utcnow_iso

if TYPE_CHECKING:
    from fazai.fleet.hub import ActionState, Hub

log = structlog.get_logger("fazai.fleet")

POLL_S = 1.0  # how often the origin checks the store for results it still waits for
DELIVER_CHUNK = 1000  # action ids per delivery request (one store read on the holder each)


class Bus(Protocol):
    """What the relay needs from the replica's NATS connection (:class:`fazai.bus.EventBus`)."""

    settings: Any

    @property
    def connected(self) -> bool: ...

    async def subscribe(self, subject: str, cb: Callable[[Any], Awaitable[None]]) -> None: ...

    async def ask(self, subject: str, body: dict[str, Any], wait_s: float = 5.0) -> dict[str, Any]: ...

    async def tell(self, subject: str, body: dict[str, Any]) -> bool: ...


def _iso_ago(seconds: float) -> str:
    # Same format as utcnow_iso, so the strings compare in time order.
    return (
        (datetime.now(UTC) - timedelta(seconds=seconds))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class RouteStore:
    """``agent_routes`` and ``agent_dispatch`` queries."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    def _upsert(self) -> Any:
        dialect = self.engine.dialect.name
        mod = postgresql if dialect == "postgresql" else sqlite
        return mod.insert(agent_routes)

    async def attach(self, node: str, replica: str) -> None:
        """``node``'s agent is now connected to ``replica`` (overwrites the previous holder)."""
        q = self._upsert().values(node=node, replica=replica, connected_at=utcnow_iso())
        q = q.on_conflict_do_update(
            index_elements=[agent_routes.c.node],
            set_={"replica": q.excluded.replica, "connected_at": q.excluded.connected_at},
        )
        async with self.engine.begin() as conn:
            await conn.execute(q)

    async def detach(self, node: str, replica: str) -> None:
        """``node`` left ``replica`` (a row another replica wrote since is kept)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(agent_routes).where(agent_routes.c.node == node, agent_routes.c.replica == replica)
            )

    async def forget_replica(self, replica: str) -> int:
        """Drop the rows a previous run of ``replica`` left (it holds no connection at start)."""
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(agent_routes).where(agent_routes.c.replica == replica))
        return res.rowcount

    async def holders(self, nodes: list[str] | None, stale_s: float) -> dict[str, str]:
        """``{node: replica}`` for nodes held by a replica whose heartbeat is fresh (all with None)."""
        from fazai.store.schema import replicas

        alive = select(replicas.c.id).where(replicas.c.heartbeat_at >= _iso_ago(stale_s))
        q = select(agent_routes.c.node, agent_routes.c.replica).where(agent_routes.c.replica.in_(alive))
        if nodes is not None:
            q = q.where(agent_routes.c.node.in_(nodes))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return {r.node: r.replica for r in rows}

    async def dispatched(self, items: list[tuple[str, str]], origin: str) -> None:
        """One ``agent_dispatch`` row per ``(node, action_id)``, taken by ``origin``."""
        if not items:
            return
        now = utcnow_iso()
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(agent_dispatch),
                [{"node": n, "action_id": a, "origin": origin, "created_at": now} for n, a in items],
            )

    async def origins(self, actions: list[str]) -> dict[str, str]:
        """``{action_id: origin replica}``."""
        if not actions:
            return {}
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(agent_dispatch.c.action_id, agent_dispatch.c.origin).where(
                        agent_dispatch.c.action_id.in_(actions)
                    )
                )
            ).all()
        return {r.action_id: r.origin for r in rows}

    async def finished(self, actions: list[str]) -> list[dict[str, Any]]:
        """The rows of those ``actions`` that have a result."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(fleet_actions).where(
                        fleet_actions.c.id.in_(actions), fleet_actions.c.state.in_(FINAL)
                    )
                )
            ).all()
        return [dict(r._mapping) for r in rows]


def final_row(row: dict[str, Any]) -> dict[str, Any]:
    """What :meth:`Hub.wait` returns for a finished action (JSON-safe)."""
    return {k: row.get(k) for k in ("id", "node", "kind", "state", "exit_code", "result")}


class Relay:
    """One replica's side of cross-replica action delivery (see the module docstring)."""

    def __init__(
        self, hub: Hub, bus: Bus, replica: str, routes: RouteStore, *, stale_s: float, wait_s: float
    ):
        self.hub = hub
        self.bus = bus
        self.replica = replica
        self.routes = routes
        self.stale_s = stale_s
        self.wait_s = wait_s
        self._tasks: set[asyncio.Task[Any]] = set()
        self._poller: asyncio.Task[None] | None = None
        self.counters = {"relayed": 0, "delivered_for_others": 0, "rerouted": 0, "resumed_from_store": 0}

    def subject(self, replica: str) -> str:
        """The subject ``replica`` takes deliveries and notifications on."""
        prefix = self.bus.settings.control_prefix
        return f"{prefix}.{re.sub(r'[^A-Za-z0-9_-]', '_', replica)}.fleet"

    async def start(self) -> None:
        """Forget this replica's leftover routes, listen on its subject, poll for awaited results."""
        n = await self.routes.forget_replica(self.replica)
        if n:
            log.info("agent_routes_forgotten", replica=self.replica, count=n, why="left by a previous run")
        await self.bus.subscribe(self.subject(self.replica), self._on_message)
        self._poller = asyncio.create_task(self._poll(), name="fazai-fleet-relay-poll")

    async def stop(self) -> None:
        for t in [*self._tasks, *([self._poller] if self._poller else [])]:
            t.cancel()
        for t in [*self._tasks, *([self._poller] if self._poller else [])]:
            with contextlib.suppress(BaseException):
                await t

    # -- origin side ----------------------------------------------------------------------------

    async def route(self, states: list[ActionState]) -> None:
        """Hand actions for nodes this replica does not hold to their holders (in the background)."""
        for st in states:
            st.origin = self.replica
        remote = [st for st in states if st.node not in self.hub.conns]
        if remote:
            task = asyncio.create_task(self._deliver(remote))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, states: list[ActionState]) -> None:
        pending = {st.id: st for st in states}
        deadline = time.monotonic() + self.wait_s
        first = True
        while pending and time.monotonic() < deadline:
            if not first:
                await asyncio.sleep(0.3)
            first = False
            # Finished meanwhile (a result came back) or the agent attached here: nothing to relay.
            for aid in [a for a, st in pending.items() if st.done.done() or st.node in self.hub.conns]:
                st = pending.pop(aid)
                if not st.done.done():
                    self.hub.queue_local(st)
            if not pending:
                return
            try:
                holders = await self.routes.holders(
                    sorted({st.node for st in pending.values()}), self.stale_s
                )
            except Exception as e:
                log.warning("agent_routes_unavailable", error=str(e))
                continue
            by_holder: dict[str, list[ActionState]] = {}
            for st in list(pending.values()):
                holder = holders.get(st.node)
                if holder is None:
                    # Not connected anywhere: the action waits in the store; the replica the agent
                    # attaches to reads it after writing its route (one of the two sees the other).
                    pending.pop(st.id)
                elif holder == self.replica:
                    continue  # our own attach is in progress: wait for hub.conns
                else:
                    by_holder.setdefault(holder, []).append(st)
            chunks = [
                (holder, all_sts[i : i + DELIVER_CHUNK])
                for holder, all_sts in by_holder.items()
                for i in range(0, len(all_sts), DELIVER_CHUNK)
            ]
            for holder, sts in chunks:
                try:
                    answer = await self.bus.ask(
                        self.subject(holder),
                        {"op": "deliver", "ids": [s.id for s in sts], "origin": self.replica},
                        wait_s=5.0,
                    )
                except Exception as e:
                    log.info("relay_retry", holder=holder, actions=len(sts), error=str(e)[:200])
                    self.counters["rerouted"] += 1
                    continue
                for aid in answer.get("accepted", []):
                    pending.pop(aid, None)
                    self.counters["relayed"] += 1
                for row in answer.get("done", []):
                    pending.pop(row["id"], None)
                    self.hub.resolve(row)
        if pending:
            log.warning(
                "relay_gave_up",
                actions=sorted(pending),
                why=f"no replica took them within {self.wait_s:.0f} s; they wait in the store",
            )

    async def _poll(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(POLL_S)
                waiting = [
                    aid
                    for aid, st in self.hub.states.items()
                    if st.origin == self.replica and st.node not in self.hub.conns and not st.done.done()
                ]
                if not waiting:
                    continue
                try:
                    rows = await self.routes.finished(waiting[:500])
                except Exception as e:
                    log.warning("relay_poll_failed", error=str(e))
                    continue
                for row in rows:
                    self.hub.resolve(final_row(row))

    async def _on_message(self, msg: Any) -> None:
        try:
            body = json.loads(msg.data)
            op = body.get("op")
            if op == "deliver":
                answer = await self._take(list(body.get("ids", [])), str(body.get("origin")))
                with contextlib.suppress(Exception):
                    await msg.respond(json.dumps(answer).encode())
            elif op == "out":
                await self.hub.remote_output(str(body["action"]), str(body["stream"]), str(body["data"]))
            elif op == "done":
                self.hub.resolve(body["row"])
        except Exception as e:  # one bad message must not stop the subscription
            log.warning("relay_message_failed", error=str(e))

    # -- holder side ----------------------------------------------------------------------------

    async def _take(self, ids: list[str], origin: str) -> dict[str, Any]:
        """Deliver actions another replica stored; answers which it took and which are finished."""
        accepted, done, moved = [], [], []
        rows = {r["id"]: r for r in await self.hub.actions.get_many(ids)}
        for aid in ids:
            row = rows.get(aid)
            if row is None:
                moved.append(aid)
            elif row["state"] in FINAL:
                done.append(final_row(row))
            elif row["node"] not in self.hub.conns:
                moved.append(aid)
            else:
                self.hub.adopt(row, origin)
                accepted.append(aid)
        self.counters["delivered_for_others"] += len(accepted)
        await self.hub.pump_nodes({rows[a]["node"] for a in accepted})
        return {"accepted": accepted, "done": done, "moved": moved}

    def listener(self, action: str, origin: str) -> Callable[[str, str], Awaitable[None]]:
        """Forwards an action's output to ``origin`` (session events are written there)."""

        async def out(stream: str, data: str) -> None:
            await self.bus.tell(
                self.subject(origin), {"op": "out", "action": action, "stream": stream, "data": data}
            )

        return out

    async def notify_done(self, origin: str, row: dict[str, Any]) -> None:
        """Tell ``origin`` an action it waits for has its result (it also polls the store)."""
        await self.bus.tell(self.subject(origin), {"op": "done", "row": row})
