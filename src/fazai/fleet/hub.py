"""The connection hub: one :class:`AgentConn` per connected node, and the routing of actions to them.

Per connection the agent may have ``credits`` data frames in flight; the hub returns credit as it
consumes frames and lists in its ``ack`` the frames it has stored durably (results, telemetry), which
the agent then drops from its outbox. A command's output is kept in memory (capped) until its
``command.exit`` arrives; then output and exit are committed together and acknowledged together, so a
crash of fazaid before that commit only means the agent sends them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from fazai import wire
from fazai.config import FleetSettings
from fazai.fleet.actions import ActionStore
from fazai.fleet.limits import OrgLimiter
from fazai.fleet.registry import Registry

if TYPE_CHECKING:
    from fazai.fleet.relay import Relay

log = structlog.get_logger("fazai.fleet")

OutputListener = Callable[[str, str], Awaitable[None] | None]


class HubError(Exception):
    """The hub cannot take an action (unknown node, shutting down…): the message says why."""


@dataclass
class ActionState:
    """What the hub holds about one action while it runs."""

    id: str
    node: str
    kind: str
    frame: str
    done: asyncio.Future[dict[str, Any]]
    chunks: dict[int, tuple[str, str]] = field(default_factory=dict)
    frame_ids: list[str] = field(default_factory=list)
    out_bytes: int = 0
    truncated: bool = False
    listeners: list[OutputListener] = field(default_factory=list)
    sent: bool = False
    seq: int = 0  # submission order (actions are resent oldest first)
    origin: str | None = None  # the replica that took the submission (fazai.fleet.relay)
    cancel: str | None = None  # why it was cancelled (command.cancel follows each send of it)
    tried: bool = False  # sent at least once (so it may be running on the node)


class AgentConn:
    """One live, authenticated agent connection."""

    def __init__(self, ws: ServerConnection, node: str, serial: str, hello: wire.Hello, window: int):
        self.ws = ws
        self.node = node
        self.serial = serial
        self.hello = hello
        self.touched = time.monotonic()
        self.window = window
        self.in_flight = 0  # data frames received and not yet credited back
        self.credit_due = 0
        self.ack_ids: list[str] = []
        self.ack_wake = asyncio.Event()
        self.running: set[str] = set()
        self.queue: deque[str] = deque()
        self.max_concurrent = 1
        self.connected_at = time.monotonic()
        self.last_seen = time.time()
        self.load: dict[str, Any] = {}

    async def send(self, text: str) -> None:
        await self.ws.send(text)


class Hub:
    """Connections and actions of the fleet."""

    def __init__(self, settings: FleetSettings, registry: Registry, actions: ActionStore):
        self.settings = settings
        self.registry = registry
        self.actions = actions
        self.conns: dict[str, AgentConn] = {}
        self.states: dict[str, ActionState] = {}
        self.telemetry: dict[str, list[dict[str, Any]]] = {}
        # Where telemetry batches are stored (the daemon's metric store); acked only once stored.
        self.on_telemetry: Callable[[str, list[wire.Metric]], Awaitable[None]] | None = None
        # Node state changes (``up`` on a connection, ``down`` after down_after_s on no replica) for
        # the daemon's node_state playbooks.
        self.on_node_state: Callable[[str, str], Awaitable[Any]] | None = None
        self._down_checks: dict[str, asyncio.Task[None]] = {}
        self._state_tasks: set[asyncio.Task[None]] = set()
        self._results: list[Any] = []
        self._seen: dict[str, dict[str, Any] | None] = {}
        # Certificates known good, refreshed from the store by the revocation watch. A handshake
        # with a serial not in here asks the store (a new or renewed certificate), a few at a time.
        self.valid: dict[str, str] = {}
        self.by_node: dict[str, set[str]] = {}
        self.boot_open: set[str] | None = None
        self._seq = 0
        self._check_slots = asyncio.Semaphore(4)
        self._results_wake = asyncio.Event()
        # Set when replicas share the store and a bus: actions for nodes held elsewhere go there.
        self.relay: Relay | None = None
        self.limiter = OrgLimiter(settings)
        self._flushers: list[asyncio.Task[None]] = []
        self.counters: dict[str, int] = {
            "connections": 0,
            "refused": 0,
            "cut": 0,
            "frames": 0,
            "results": 0,
            "redelivered": 0,
        }

    # -- connections ----------------------------------------------------------------------------

    async def is_connected(self, node: str) -> bool:
        """Whether ``node`` holds a connection now: to this replica, or to a live one (route table)."""
        if node in self.conns:
            return True
        if self.relay is None:
            return False
        return node in await self.relay.routes.holders([node], self.relay.stale_s)

    async def handle(self, ws: ServerConnection, node: str, serial: str) -> None:
        """Serve one agent connection after TLS and the revocation check: hello first, then frames."""
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout=10)
            env, hello = wire.parse(raw, max_bytes=self.settings.max_frame_bytes)
            if env.kind != "hello":
                raise wire.WireError(f"the first frame must be hello, not {env.kind}", "no_hello")
            if wire.VERSION not in hello.protocol:
                raise wire.WireError(
                    f"agent speaks protocol {hello.protocol}, this server v{wire.VERSION}: upgrade the agent",
                    "version",
                )
        except (TimeoutError, wire.WireError) as e:
            code = getattr(e, "code", "timeout")
            reason = str(e) or "no hello within 10 s"
            log.warning("agent_refused", node=node, reason=reason, code=code)
            self.counters["refused"] += 1
            with contextlib.suppress(ConnectionClosed):
                await ws.send(wire.frame("error", {"code": code, "message": reason}))
            await ws.close(1008, reason[:120])
            return
        except ConnectionClosed:
            return
        old = self.conns.get(node)
        if old is not None:
            # One live connection per node: the newer one wins (the old is half-dead after a network cut).
            log.info("agent_replaced", node=node)
            await old.ws.close(1000, "replaced by a newer connection")
        conn = AgentConn(ws, node, serial, hello, self.settings.credits)
        conn.max_concurrent = min(hello.limits.max_concurrent, self.settings.max_concurrent)
        self.conns[node] = conn
        self.counters["connections"] += 1
        # last_seen/hello are written in batches by the revocation watch (one write per tick, not one
        # per connection: a reconnect storm of thousands would queue on the store otherwise).
        self._seen[node] = hello.model_dump(mode="json")
        limits = wire.Limits(
            max_concurrent=conn.max_concurrent, max_output_bytes=self.settings.max_output_bytes
        )
        await conn.send(
            wire.frame(
                "ack",
                wire.Ack(
                    ids=[env.id],
                    credit=conn.window,
                    accepted=True,
                    node=node,
                    heartbeat_s=self.settings.heartbeat_s,
                    limits=limits,
                ),
                corr=env.id,
            )
        )
        log.info("agent_connected", node=node, version=hello.agent_version, pending=hello.pending)
        pending_down = self._down_checks.pop(node, None)
        if pending_down is not None:  # back within the grace: it never was down
            pending_down.cancel()
        self._state_change(node, "up")
        acker = asyncio.create_task(self._acker(conn))
        try:
            if self.relay is not None:
                # Committed before the open actions are read (see fazai.fleet.relay).
                await self.relay.routes.attach(node, self.relay.replica)
            await self._resume(conn)
            async for raw in ws:
                try:
                    await self._on_frame(conn, raw)
                except wire.WireError as e:
                    log.warning("agent_cut", node=node, reason=str(e), code=e.code)
                    self.counters["cut"] += 1
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send(wire.frame("error", {"code": e.code, "message": str(e)}))
                    await ws.close(1008, str(e)[:120])
                    break
        except ConnectionClosed as e:
            if (e.rcvd and e.rcvd.code == 1009) or (e.sent and e.sent.code == 1009):
                log.warning("agent_cut", node=node, reason="frame over the size limit", code="too_big")
                self.counters["cut"] += 1
        finally:
            acker.cancel()
            if self.conns.get(node) is conn:
                del self.conns[node]
                # Actions sent on this connection go back to the queue: resent at the next hello
                # (the agent's executed-id memory keeps that from running them twice).
                freed: list[str] = []
                for aid in conn.running:
                    st = self.states.get(aid)
                    if st is not None:
                        st.sent = False
                    freed += self.limiter.release(node, aid)
                if self.relay is not None:
                    with contextlib.suppress(Exception):
                        await self.relay.routes.detach(node, self.relay.replica)
                await self._pump_nodes(freed)
                if self.on_node_state is not None and node not in self._down_checks:
                    self._down_checks[node] = asyncio.create_task(self._down_unless_back(node))
            log.info("agent_disconnected", node=node, code=ws.close_code, reason=ws.close_reason)

    def _state_change(self, node: str, state: str) -> None:
        if self.on_node_state is None:
            return
        task = asyncio.create_task(self._report_state(node, state))
        self._state_tasks.add(task)
        task.add_done_callback(self._state_tasks.discard)

    async def _report_state(self, node: str, state: str) -> None:
        assert self.on_node_state is not None
        try:
            await self.on_node_state(node, state)
        except Exception as e:  # a playbook's failure is its own; the gateway goes on
            log.error("node_state_failed", node=node, state=state, error=str(e))

    async def _down_unless_back(self, node: str) -> None:
        """A reconnect (here or to another replica) within ``down_after_s`` is not a node going down."""
        try:
            await asyncio.sleep(self.settings.down_after_s)
            try:
                back = await self.is_connected(node)
            except Exception as e:  # the route table unreadable: say nothing rather than a false down
                log.warning("node_state_unknown", node=node, error=str(e))
                return
            if not back:
                await self._report_state(node, "down")
        finally:
            if self._down_checks.get(node) is asyncio.current_task():
                del self._down_checks[node]

    async def _acker(self, conn: AgentConn) -> None:
        """Send coalesced acks: durable ids and returned credit."""
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            while True:
                await conn.ack_wake.wait()
                conn.ack_wake.clear()
                ids, conn.ack_ids = conn.ack_ids, []
                credit, conn.credit_due = conn.credit_due, 0
                conn.in_flight -= credit
                if ids or credit:
                    await conn.send(wire.frame("ack", wire.Ack(ids=ids, credit=credit)))

    def _credit(self, conn: AgentConn, ids: list[str] | None = None) -> None:
        conn.credit_due += 1
        if ids:
            conn.ack_ids.extend(ids)
        conn.ack_wake.set()

    async def _on_frame(self, conn: AgentConn, raw: str | bytes) -> None:
        env, spec = wire.parse(raw, max_bytes=self.settings.max_frame_bytes)
        self.counters["frames"] += 1
        conn.last_seen = time.time()
        if env.kind in wire.DATA_KINDS:
            conn.in_flight += 1
            if conn.in_flight > conn.window:
                raise wire.WireError(
                    f"credit exceeded: {conn.in_flight} frames in flight, window {conn.window} "
                    "(wait for the server's ack before sending more)",
                    "credit",
                )
        if env.kind == "heartbeat":
            conn.load = spec.model_dump()
            # The inventory's last heartbeat, at most every 30 s per node (10,000 nodes ≈ 330 writes/s).
            if time.monotonic() - conn.touched > 30.0:
                conn.touched = time.monotonic()
                await self.registry.touch(conn.node)
        elif env.kind == "telemetry.push":
            buf = self.telemetry.setdefault(conn.node, [])
            buf.extend(m.model_dump() for m in spec.batch)
            del buf[:-1000]
            try:
                if self.on_telemetry is not None:
                    await self.on_telemetry(conn.node, spec.batch)
            except Exception as e:  # not stored: credit back, but no ack, so the agent sends it again
                log.warning("telemetry_not_stored", node=conn.node, error=str(e)[:300])
                self._credit(conn)
            else:
                self._credit(conn, [env.id])
        elif env.kind == "command.output":
            await self._on_output(conn, env, spec)
        elif env.kind in ("command.exit", "result"):
            await self._on_final(conn, env, spec)
        elif env.kind == "cert.renew":
            await self._on_renew(conn, env, spec)
        elif env.kind == "ack":
            pass
        else:
            raise wire.WireError(f"an agent may not send {env.kind} frames", "unexpected_kind")

    async def _on_output(self, conn: AgentConn, env: wire.Envelope, spec: wire.CommandOutput) -> None:
        st = self.states.get(spec.action)
        if st is None:
            # Output of an action already finished (redelivery after a lost ack): just acknowledge.
            row = await self.actions.get(spec.action)
            if row is None or row["node"] != conn.node:
                raise wire.WireError(f"output for unknown action {spec.action}", "unknown_action")
            self._credit(conn, [env.id])
            return
        st.frame_ids.append(env.id)
        self._credit(conn)  # credit now; durability ack comes with the exit
        if spec.seq in st.chunks:
            return
        room = self.settings.max_output_bytes - st.out_bytes
        data = spec.data
        if len(data) > room:
            data = data[: max(room, 0)]
            st.truncated = True
        st.out_bytes += len(data)
        st.chunks[spec.seq] = (spec.stream, data)
        for fn in list(st.listeners):
            res = fn(spec.stream, data)
            if asyncio.iscoroutine(res):
                await res

    async def _on_final(self, conn: AgentConn, env: wire.Envelope, spec: Any) -> None:
        st = self.states.get(spec.action)
        row = None
        if st is None:
            row = await self.actions.get(spec.action)
            if row is None or row["node"] != conn.node:
                raise wire.WireError(f"result for unknown action {spec.action}", "unknown_action")
        ids = [*(st.frame_ids if st else []), env.id]
        if env.kind == "command.exit":
            out = [st.chunks[k] for k in sorted(st.chunks)] if st else []
            result = {
                "stdout": "".join(d for s, d in out if s == "stdout"),
                "stderr": "".join(d for s, d in out if s == "stderr"),
                "duration_s": spec.duration_s,
                "timed_out": spec.timed_out,
                "truncated": spec.truncated or bool(st and st.truncated),
                "refused": spec.refused,
                "cancelled": bool(st and st.cancel is not None),
            }
            state = (
                "done" if spec.refused is None and spec.exit_code == 0 and not spec.timed_out else "failed"
            )
            exit_code: int | None = spec.exit_code
        else:
            result = {"ok": spec.ok, "data": spec.data, "error": spec.error, "refused": spec.refused}
            state = "done" if spec.ok else "failed"
            exit_code = None
        conn.running.discard(spec.action)
        # Group commit: results arriving together (a fan-out) share one transaction.
        self._results.append((conn, spec.action, state, exit_code, result, ids, st))
        self._results_wake.set()
        self.counters["results"] += 1

    async def result_writer(self) -> None:
        """Commit pending results in batches, then ack them and wake their waiters."""
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await self._results_wake.wait()
                self._results_wake.clear()
                batch, self._results = self._results, []
                if not batch:
                    continue
                try:
                    fresh = await self.actions.finish_many([(b[1], b[2], b[3], b[4]) for b in batch])
                except Exception as e:  # store down: the agents resend (no ack was sent)
                    log.warning("results_not_stored", error=str(e), count=len(batch))
                    continue
                pumped: dict[str, AgentConn] = {}
                for (conn, aid, state, exit_code, result, ids, st), new in zip(batch, fresh, strict=True):
                    if not new:
                        self.counters["redelivered"] += 1
                    self._credit(conn, ids)
                    for other in self.limiter.release(conn.node, aid):
                        if (c := self.conns.get(other)) is not None:
                            pumped[other] = c
                    if st is not None:
                        self._untrack(aid)
                        row = {
                            "id": aid,
                            "node": st.node,
                            "kind": st.kind,
                            "state": state,
                            "exit_code": exit_code,
                            "result": result,
                        }
                        if not st.done.done():
                            st.done.set_result(row)
                        if self.relay is not None and st.origin not in (None, self.relay.replica):
                            assert st.origin is not None
                            await self.relay.notify_done(st.origin, row)
                    pumped[conn.node] = conn
                await self._pump(*pumped.values())

    async def _on_renew(self, conn: AgentConn, env: wire.Envelope, spec: wire.CertRenew) -> None:
        try:
            issued = await self.registry.renew(conn.node, conn.serial, spec.csr)
        except Exception as e:
            await conn.send(wire.frame("error", {"code": "renew", "message": str(e)}, corr=env.id))
            return
        log.info("cert_renewed", node=conn.node, serial=issued.serial, not_after=str(issued.not_after))
        await conn.send(
            wire.frame(
                "cert.issued", wire.CertIssued(cert=issued.pem, not_after=str(issued.not_after)), corr=env.id
            )
        )

    # -- actions --------------------------------------------------------------------------------

    async def submit(
        self,
        nodes: list[str],
        kind: str,
        spec: dict[str, Any],
        *,
        session: str | None = None,
        listener: OutputListener | None = None,
    ) -> list[ActionState]:
        """Queue one action per node (stored first), send to those connected; returns their states."""
        if kind not in wire.ACTION_KINDS:
            raise HubError(f"unknown action kind {kind!r}: one of {', '.join(wire.ACTION_KINDS)}")
        body = wire.SPECS[kind].model_validate(spec).model_dump(mode="json")
        if self.limiter.enabled:
            await self.limiter.refresh(self.actions.engine, nodes)
            self.limiter.check_submit(nodes, (st.node for st in self.states.values() if not st.sent))
        loop = asyncio.get_running_loop()
        states = []
        for node in nodes:
            aid = wire.new_id("a")
            st = ActionState(
                id=aid,
                node=node,
                kind=kind,
                frame=wire.frame(kind, body, id=aid, node=node, corr=session),
                done=loop.create_future(),
            )
            if listener is not None:
                st.listeners.append(listener)
            states.append(st)
        await self.actions.create(
            {"id": s.id, "node": s.node, "kind": kind, "spec": body, "session": session} for s in states
        )
        if self.relay is not None:
            # The (node, action id) row fixes the id before anything is sent anywhere.
            await self.relay.routes.dispatched([(s.node, s.id) for s in states], self.relay.replica)
        for st in states:
            self._track(st)
            conn = self.conns.get(st.node)
            if conn is not None:
                conn.queue.append(st.id)
        if self.relay is not None:
            await self.relay.route(states)
        await self._pump(*(c for c in (self.conns.get(n) for n in {s.node for s in states}) if c is not None))
        return states

    async def _resume(self, conn: AgentConn) -> None:
        """After a hello: queue the node's open actions, oldest first. The store is read only for nodes
        that had open actions when this process started (a restart's leftovers); the rest are live."""
        if self.relay is not None:
            # Replicas on one store: any of them may have taken actions for this node (or held it
            # before a failover), so the store is read at every attach.
            rows = [r for r in await self.actions.open_for(conn.node) if r["id"] not in self.states]
            origins = await self.relay.routes.origins([r["id"] for r in rows])
            for row in rows:
                self.adopt(row, origins.get(row["id"]), queue=False)
            self.relay.counters["resumed_from_store"] += len(rows)
        else:
            if self.boot_open is None:
                self.boot_open = await self.actions.nodes_with_open()
            if conn.node in self.boot_open:
                for row in await self.actions.open_for(conn.node):
                    if row["id"] not in self.states:
                        self.adopt(row, None, queue=False)
                self.boot_open.discard(conn.node)
        queued = set(conn.queue)
        for aid in sorted(self.by_node.get(conn.node, ()), key=lambda a: self.states[a].seq):
            if aid not in queued:
                conn.queue.append(aid)
        await self._pump(conn)

    def adopt(self, row: dict[str, Any], origin: str | None, *, queue: bool = True) -> ActionState:
        """Track a stored, open action (a restart's leftover or another replica's submission)."""
        st = self.states.get(row["id"])
        if st is None:
            st = ActionState(
                id=row["id"],
                node=row["node"],
                kind=row["kind"],
                frame=wire.frame(
                    row["kind"], row["spec"], id=row["id"], node=row["node"], corr=row["session"]
                ),
                done=asyncio.get_running_loop().create_future(),
                origin=origin,
                tried=True,  # stored and open: it may have reached the node already
            )
            self._track(st)
        if self.relay is not None and origin not in (None, self.relay.replica):
            assert origin is not None
            if not st.listeners:
                st.listeners.append(self.relay.listener(st.id, origin))
            st.origin = origin
        if queue:
            self.queue_local(st, pump=False)
        return st

    def queue_local(self, st: ActionState, *, pump: bool = True) -> None:
        """Queue a tracked action on this replica's connection to its node (if any)."""
        conn = self.conns.get(st.node)
        if conn is not None and st.id not in conn.queue and st.id not in conn.running:
            conn.queue.append(st.id)
            if pump:
                task = asyncio.ensure_future(self._pump(conn))
                task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def pump_nodes(self, nodes: set[str]) -> None:
        """Send what is queued for these nodes' connections here."""
        await self._pump(*(c for c in (self.conns.get(n) for n in nodes) if c is not None))

    def resolve(self, row: dict[str, Any]) -> None:
        """An action this replica waits for finished elsewhere (told over the bus, or seen in the store)."""
        st = self.states.get(row["id"])
        if st is None or st.done.done():
            return
        self._untrack(st.id)
        st.done.set_result(row)

    async def remote_output(self, action: str, stream: str, data: str) -> None:
        """Output of an action another replica runs for this one: to its listeners (session events)."""
        st = self.states.get(action)
        if st is None:
            return
        for fn in list(st.listeners):
            res = fn(stream, data)
            if asyncio.iscoroutine(res):
                await res

    def _track(self, st: ActionState) -> None:
        self._seq += 1
        st.seq = self._seq
        self.states[st.id] = st
        self.by_node.setdefault(st.node, set()).add(st.id)

    def _untrack(self, aid: str) -> ActionState | None:
        self.limiter.forget(aid)
        st = self.states.pop(aid, None)
        if st is not None:
            ids = self.by_node.get(st.node)
            if ids is not None:
                ids.discard(aid)
                if not ids:
                    del self.by_node[st.node]
        return st

    async def _pump(self, *conns: AgentConn) -> None:
        """Send queued actions while each node has room (its max_concurrent): one store write for all."""
        batch: list[tuple[AgentConn, ActionState]] = []
        for conn in conns:
            while conn.queue and len(conn.running) < conn.max_concurrent:
                st = self.states.get(conn.queue[0])
                if st is None or st.sent:
                    conn.queue.popleft()
                    continue
                if not self.limiter.admit(conn.node, st.id):
                    break  # its organisation is at its cap: pumped again when a slot frees
                conn.queue.popleft()
                st.sent = st.tried = True
                conn.running.add(st.id)
                batch.append((conn, st))
        if not batch:
            return
        await self.actions.mark_running([st.id for _, st in batch])
        for conn, st in batch:
            try:
                await conn.send(st.frame)
                if st.cancel is not None:  # cancelled while its node was away: it may be running there
                    await self._send_cancel(conn, st)
            except ConnectionClosed:
                st.sent = False

    async def _send_cancel(self, conn: AgentConn, st: ActionState) -> bool:
        if "command.cancel" not in conn.hello.capabilities:
            return False  # an agent older than wire revision 2: it lets the command finish
        spec = wire.CommandCancel(action=st.id, reason=st.cancel or "")
        await conn.send(wire.frame("command.cancel", spec, node=st.node))
        return True

    async def cancel(self, action: str, reason: str = "cancelled") -> str:
        """Stop a command: ``dequeued`` (never sent, now failed as cancelled), ``sent`` (the node kills
        its process group; its exit follows), ``pending`` (its node is away: sent on its return),
        ``unsupported`` (an older agent, or not a command: it finishes), ``finished`` (too late)."""
        st = self.states.get(action)
        if st is None:
            return "finished"
        if st.kind != "command.exec":
            return "unsupported"
        st.cancel = reason
        conn = self.conns.get(st.node)
        if not st.tried:
            # Still waiting here (offline node, node or organisation at its cap): never on the node.
            if conn is not None and action in conn.queue:
                conn.queue.remove(action)
            result = {"cancelled": True, "error": f"cancelled before it was sent: {reason}"}
            await self.actions.finish(action, "failed", None, result)
            self._untrack(action)
            if not st.done.done():
                st.done.set_result({"id": action, "node": st.node, "kind": st.kind, "state": "failed",
                                    "exit_code": None, "result": result})  # fmt: skip
            return "dequeued"
        if conn is None or not st.sent:
            return "pending"
        try:
            return "sent" if await self._send_cancel(conn, st) else "unsupported"
        except ConnectionClosed:
            return "pending"

    async def _pump_nodes(self, nodes: list[str]) -> None:
        await self._pump(*(c for c in (self.conns.get(n) for n in dict.fromkeys(nodes)) if c is not None))

    def waiting(self, action: str) -> str | None:
        """Why a live action is still queued (an organisation at its cap), or None."""
        return self.limiter.held.get(action)

    async def wait(self, action: str, timeout: float | None = None) -> dict[str, Any]:  # noqa: ASYNC109
        """The finished action row (waits while it runs); the stored row when it is not live here."""
        st = self.states.get(action)
        if st is None:
            row = await self.actions.get(action)
            if row is None:
                raise HubError(f"no action {action}")
            return row
        return await asyncio.wait_for(asyncio.shield(st.done), timeout)

    # -- revocation -----------------------------------------------------------------------------

    async def check_peer(self, serial: str, node: str) -> str | None:
        """None when this certificate may connect, else why not (see :meth:`Registry.check_serial`)."""
        if self.valid.get(serial) == node:
            return None
        async with self._check_slots:
            why = await self.registry.check_serial(serial, node)
        if why is None:
            self.valid[serial] = node
        return why

    async def watch_revocations(self) -> None:
        """Close live connections whose certificate was revoked (by any process on this store)."""
        since = _now_iso()  # from now: earlier revocations were refused at their handshakes
        with contextlib.suppress(asyncio.CancelledError):
            self.valid = await self.registry.valid_serials()
            flusher: asyncio.Task[None] | None = None
            while True:
                await asyncio.sleep(self.settings.revocation_poll_s)
                # Seen-writes run beside the watch: a backlog of hellos (thousands of new nodes at
                # once) must not delay a revocation past revocation_poll_s.
                if flusher is None or flusher.done():
                    flusher = asyncio.create_task(self._flush_logged())
                    self._flushers = [flusher]  # cancelled with the watch (see stop_flush)
                try:
                    revoked, since = await self.registry.revoked_since(since)
                except Exception as e:  # the store is briefly unavailable: try again next tick
                    log.warning("revocation_poll_failed", error=str(e))
                    continue
                for serial, node in revoked:
                    self.valid.pop(serial, None)
                    conn = self.conns.get(node)
                    if conn is not None and conn.serial == serial:
                        log.warning(
                            "agent_cut", node=node, reason=f"certificate {serial} revoked", code="revoked"
                        )
                        self.counters["cut"] += 1
                        n = await self.actions.fail_open(node, f"node {node} was revoked")
                        for aid in list(conn.running) + list(conn.queue):
                            await self._pump_nodes(self.limiter.release(node, aid))
                            st = self._untrack(aid)
                            if st is not None and not st.done.done():
                                st.done.set_exception(HubError(f"node {node} was revoked"))
                        log.info("actions_failed", node=node, count=n)
                        await conn.ws.close(1008, "certificate revoked")

    def stop_flush(self) -> None:
        """Cancel a seen-write and node-state reports still running (fazaid is stopping)."""
        for t in [*self._flushers, *self._state_tasks, *self._down_checks.values()]:
            t.cancel()

    async def _flush_logged(self) -> None:
        try:
            await self.flush_seen()
        except Exception as e:  # the store is briefly unavailable: the next tick writes them
            log.warning("seen_not_stored", error=str(e))

    async def flush_seen(self) -> None:
        """Write the hellos and heartbeats seen since the last flush (last_seen, hello) in one go."""
        for conn in self.conns.values():
            if time.time() - conn.last_seen < self.settings.revocation_poll_s * 2:
                self._seen.setdefault(conn.node, None)
        if self._seen:
            seen, self._seen = self._seen, {}
            await self.registry.touch_many(seen)

    def snapshot(self) -> list[dict[str, Any]]:
        """Connected nodes for the API."""
        return [
            {
                "node": c.node,
                "version": c.hello.agent_version,
                "hostname": c.hello.hostname,
                "os": c.hello.os,
                "distro": c.hello.distro,
                "capabilities": c.hello.capabilities,
                "running": len(c.running),
                "queued": len(c.queue),
                "load": c.load,
                "connected_s": round(time.monotonic() - c.connected_at, 1),
            }
            for c in self.conns.values()
        ]


def _now_iso() -> str:
    from fazai.protocol import utcnow_iso

    return utcnow_iso()
