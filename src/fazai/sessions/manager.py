"""Session runner: drives the agent loop for a session and turns its events into the stored log.

For every run it assigns ``seq``, stores each event (group-committed by :class:`EventWriter`) and only
then publishes it to followers, resolves approvals and questions through futures that
``POST /agent/reply`` (or the embedded CLI) completes, and aborts on request. No HTTP here: the daemon
and the embedded CLI both use this class.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from fazai.bus import EventBus
from fazai.config import Settings
from fazai.protocol import Event
from fazai.safety.policy import yes_may_approve
from fazai.sessions.coalesce import TokenCoalescer
from fazai.sessions.errors import RunnerError
from fazai.sessions.hub import Hub
from fazai.sessions.metrics import AgentMetrics, RunTracker
from fazai.sessions.replicas import ReplicaMixin
from fazai.sessions.secrets import build_redactor
from fazai.store import EventWriter, SessionRecord, Store
from fazai.store.redact import StreamRedactor
from fazai.targets.reaper import REAPER, kill_orphans

log = structlog.get_logger("fazai.runner")

# (goal, session_id, interaction, abort, prior_events, options) -> events
LoopFn = Callable[..., AsyncIterator[Event]]

TERMINAL_KINDS = {"done", "aborted"}


# Events the loop does not run past until they are stored (see ``_store_event``).
_DURABLE_BEFORE_GOING_ON = frozenset({"action", "approval_required", "ask", "done", "error", "aborted"})


class _LogWriteFailed(Exception):
    """The run's events cannot be stored: it must not go on acting unrecorded."""


# How long a run that stops on a write failure waits for its last events and status to be stored.
FAILED_WRITE_WAIT_S = 10.0


@dataclass(slots=True)
class RunOptions:
    """Per-run choices of the operator."""

    yes: bool = False
    max_iterations: int | None = None
    model: str | None = None
    mode: str = "agent"  # "agent", "ask" (question mode: read-only, [ask] limits) or "command" (below)
    node: str | None = None  # an inventory node: the run's commands go to its target (--node)
    target: Any = None  # that node's target, resolved by the manager (not given by clients)


@dataclass(slots=True)
class _Pending:
    kind: str  # "approval" | "ask"
    future: asyncio.Future[Any]
    default: str | None = None
    role: str | None = None  # the role a playbook step's approval names (fazai.web.access.reply_as)


@dataclass
class Run:
    """One run of a session (one goal) in progress."""

    session_id: str
    goal: str
    options: RunOptions
    abort: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[str] | None = None
    pending: dict[Any, _Pending] = field(default_factory=dict)
    next_seq: int = 1
    status: str = "running"
    # Holds back a token/exec_log tail that may be the start of a secret (see fazai.store.redact).
    redact: StreamRedactor | None = None
    # Set when its events cannot be written: the run stops, its command is killed (see _drive).
    failure: str | None = None
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    # Merges the tokens that arrive while the previous event is being written (see coalesce.py).
    tokens: TokenCoalescer | None = None

    def expect(
        self, action_id: Any, kind: str, default: str | None = None, role: str | None = None
    ) -> _Pending:
        """Register a reply this run waits for (idempotent)."""
        if action_id not in self.pending:
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.pending[action_id] = _Pending(kind, fut, default, role)
        return self.pending[action_id]


class RunInteraction:
    """The loop's ``Interaction``: approvals and questions become futures answered by a reply.

    The loop itself records ``approval_required`` / ``ask`` before asking and ``reply`` after; this
    class only waits (or answers at once for ``--yes``).
    """

    # --yes never approves more than fazai.safety.policy.yes_may_approve says (read_only, changes_state);
    # the safety policy already allows those, so what still reaches approve() under --yes (opaque,
    # destructive, security-critical, unclassified) is denied.

    def __init__(self, manager: SessionManager, run: Run):
        self._m = manager
        self._run = run

    async def approve(self, action_id: Any, summary: str, risk: str, reasons: Sequence[str]) -> bool:
        run = self._run
        if run.options.yes:
            run.pending.pop(action_id, None)
            ok = yes_may_approve(str(getattr(risk, "value", risk)))
            log.info("auto_reply", action=action_id, approved=ok, risk=str(risk), by="--yes")
            return ok
        return bool(await self._wait(action_id, "approval", None))

    async def answer(
        self, action_id: Any, question: str, options: Sequence[str] | None, default: str | None
    ) -> str | None:
        if self._run.options.yes:
            self._run.pending.pop(action_id, None)
            # Non-interactive: the question's default, or nothing (the loop then stops, blocked).
            return default
        return await self._wait(action_id, "ask", default)

    async def _wait(self, action_id: Any, kind: str, default: str | None) -> Any:
        run = self._run
        # Usually registered already, when the loop's approval_required / ask event was stored: a
        # client may reply as soon as it sees that event, before the loop gets here.
        pending = run.pending.get(action_id) or run.expect(action_id, kind, default)
        try:
            return await pending.future
        finally:
            run.pending.pop(action_id, None)


def _status_of(ev: Event | None) -> str:
    if ev is None:
        return "failed"
    if ev.kind == "aborted":
        return "aborted"
    if ev.kind == "done":
        status = ev.data.get("status", "success")
        return "done" if status == "success" else "unverified" if status == "unverified" else "failed"
    return "failed"


class SessionManager(ReplicaMixin):
    """Owns the runs of the sessions in one process (the daemon, or the embedded CLI)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        hub: Hub | None = None,
        metrics: AgentMetrics | None = None,
        loop_fn: LoopFn | None = None,
        bus: EventBus | None = None,
    ):
        self.settings = settings
        self.store = store
        self.hub = hub or Hub(settings.daemon.sse_queue_size)
        self.metrics = metrics or AgentMetrics()
        self.bus = bus
        self.replica = settings.daemon.replica_id or socket.gethostname()
        # Replicas share the store only on PostgreSQL; SQLite is one process's own.
        self.shared_store = store.url.startswith("postgresql")
        self.writer = EventWriter(
            store,
            self._publish,
            redactor=build_redactor(settings),
            on_failure=self._on_write_failure,
            urgent_kinds=_DURABLE_BEFORE_GOING_ON,
        )
        self.metrics.store_commits.set_function(lambda: self.writer.commits)
        # Events sent to followers of other replicas' sessions, by where they came from.
        self.followed = {"bus": 0, "store": 0}
        self._heartbeat: asyncio.Task[None] | None = None
        self._loop_fn = loop_fn
        self._owned_loop: Any = None
        self.runs: dict[str, Run] = {}
        self._trackers: dict[str, RunTracker] = {}
        self._nodes: Any = None  # NodeTargets, made on the first --node run

    @property
    def nodes(self) -> Any:
        """The targets of inventory nodes (one reused connection per node) for this process."""
        if self._nodes is None:
            from fazai.store.inventory import Inventory
            from fazai.targets.nodes import NodeTargets

            self._nodes = NodeTargets(self.settings, Inventory(self.store.engine))
        return self._nodes

    async def resolve_node(self, options: RunOptions) -> RunOptions:
        """``options`` with the node's target, or :class:`RunnerError` saying why it cannot be had."""
        if options.node is None or options.target is not None:
            return options
        from fazai.targets.nodes import NodeUnavailable

        try:
            _node, target = await self.nodes.target_for(options.node)
        except NodeUnavailable as e:
            raise RunnerError(str(e), 404 if e.reason == "unknown" else 503, e.reason) from e
        return replace(options, target=target)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, *, recover: bool = True) -> list[str]:
        """Start the writer; with ``recover``, mark sessions left ``running`` as ``interrupted``.

        On a shared store only this replica's leftovers (and those of replicas whose heartbeat
        stopped) are marked; the live runs of other replicas are left alone.
        """
        self.writer.start()
        # Commands a dead daemon (kill -9) left running are stopped before any session resumes.
        REAPER.registry = self.settings.paths.runtime_dir / "commands"
        await asyncio.to_thread(kill_orphans, REAPER.registry)
        ids: list[str] = []
        if self.shared_store:
            if not recover:
                # An embedded CLI next to a replica: its own name, so neither marks the other's runs.
                self.replica = f"{self.replica}-cli{os.getpid()}"
            await self.store.heartbeat(self.replica)
            if recover:
                ids = await self.store.mark_running_interrupted(self.replica, stale_after_s=self._stale_s)
            self._heartbeat = asyncio.create_task(self._beat(), name="fazai-heartbeat")
        elif recover:
            ids = await self.store.mark_running_interrupted()
        for sid in ids:
            log.warning("session_interrupted", session=sid, why="left running by a previous process")
        return ids

    def _publish(self, events: list[Event]) -> None:
        self.hub.publish(events)
        if self.bus is not None:
            self.bus.publish(events)

    async def stop(self) -> None:
        """Interrupt every run (they stay resumable), flush the log and stop the writer."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        for run in list(self.runs.values()):
            if run.task and not run.task.done():
                run.task.cancel()
        for run in list(self.runs.values()):
            if run.task:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run.task
        await self.writer.stop()
        if self._nodes is not None:
            with contextlib.suppress(Exception):
                await self._nodes.aclose()
        if self._owned_loop is not None:
            with contextlib.suppress(Exception):
                await self._owned_loop.aclose()

    # -- requests ---------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if not self.writer.healthy:
            why = self.writer.failure or self.writer.last_failure or "its disk reserve could not be made"
            raise RunnerError(
                f"the session store cannot be written ({why}): new runs are refused until it can — "
                f"free disk space where the store lives ({self.store.location}) and try again",
                503,
            )

    def check_goal(self, goal: str) -> None:
        """RunnerError (400 / 413) for an empty or oversized goal."""
        if not goal.strip():
            raise RunnerError("the goal is empty: say what FazAI should do")
        limit = self.settings.agent.max_goal_chars
        if len(goal) > limit:
            raise RunnerError(
                f"the goal is {len(goal)} characters; at most {limit} are accepted ([agent] "
                "max_goal_chars): state the goal and let the agent read the details from the machine",
                413,
            )

    async def create(
        self, goal: str, *, mode: str = "agent", model: str | None = None, status: str = "created"
    ) -> SessionRecord:
        """Create a session without running it (status ``created``)."""
        self.check_goal(goal)
        self._check_writable()
        goal = self.writer.redactor.text(goal)
        return await self.store.create_session(
            goal, mode=mode, model=model or self._model_name(), replica=self.replica, status=status
        )

    async def start_run(
        self, *, session_id: str | None = None, goal: str | None = None, options: RunOptions | None = None
    ) -> Run:
        """Start (new session), continue (existing session + new goal) or resume (existing, no goal)."""
        options = options or RunOptions()
        self._check_writable()
        # Secrets may have changed since the last run (a firewall added, a token rotated).
        self.writer.redactor = build_redactor(self.settings)
        prior: list[Event] = []
        if session_id is None:
            if not goal or not goal.strip():
                raise RunnerError("the goal is empty: say what FazAI should do")
            options = await self.resolve_node(options)
            rec = await self.create(goal, mode=options.mode, model=options.model, status="running")
        else:
            found = await self.store.get_session(session_id)
            if found is None:
                raise RunnerError(f"no session {session_id} (list them with `fazai sessions`)", 404)
            rec = found
            if session_id in self.runs:
                raise RunnerError(f"session {session_id} is already running (abort it first)", 409)
            if self.shared_store and rec.status == "running" and rec.replica not in (None, self.replica):
                # Another replica runs it (or ran it and its heartbeat has not gone stale yet).
                raise RunnerError(
                    f"session {session_id} is running on replica {rec.replica} (abort it first, from any "
                    "replica, or wait until that replica is taken for dead and it becomes interrupted)",
                    409,
                )
            # No goal = resume: the loop picks up the session's latest goal from its history.
            goal = goal.strip() if goal and goal.strip() else ""
            if goal:
                self.check_goal(goal)
            prior = await self.store.events(session_id)
            # A session stays on the node it worked on: continuing or resuming it goes there again.
            # (A session with no events yet — fazaid creates the row first — takes the run's node.)
            was = next((e.data.get("node") for e in reversed(prior) if e.kind == "node"), None)
            if prior and options.node is not None and options.node != was:
                where = f"on node {was}" if was else "on this machine"
                raise RunnerError(
                    f"session {session_id} ran {where}: continue it without --node, or start a new "
                    f"session for {options.node}",
                    409,
                )
            try:
                options = await self.resolve_node(replace(options, node=was if prior else options.node))
            except RunnerError as e:
                if not prior:  # the row was made for this run: it ends here, with the reason
                    await self.store.update_session(session_id, status="failed", summary=str(e)[:1000])
                raise
            await self.store.update_session(
                session_id,
                status="running",
                goal=self.writer.redactor.text(goal) or None,
                model=options.model or self._model_name(),
                replica=self.replica,
            )
        assert goal is not None
        run = Run(session_id=rec.id, goal=goal, options=options)
        run.redact = StreamRedactor(self.writer.redactor)
        run.tokens = TokenCoalescer(
            lambda ev: self._submit(run, ev), limit=self.settings.agent.max_event_chars
        )
        run.next_seq = (prior[-1].seq + 1) if prior else 1
        self.runs[rec.id] = run
        self._trackers[rec.id] = self.metrics.run_tracker()
        run.task = asyncio.create_task(self._drive(run, prior), name=f"fazai-run-{rec.id}")
        return run

    async def abort(self, session_id: str) -> bool:
        """Ask the run to stop at once (the loop kills what it runs); False when not running."""
        run = self.runs.get(session_id)
        if run is None:
            return False
        run.abort.set()
        for p in list(run.pending.values()):
            if not p.future.done():
                p.future.set_result(False if p.kind == "approval" else None)
        return True

    def _on_write_failure(self, sessions: set[str], reason: str) -> None:
        """The writer could not store these sessions' events: stop their runs (they are told why)."""
        for sid in sessions:
            run = self.runs.get(sid)
            if run is None or run.failure is not None:
                continue
            log.error("run_stopped_log_unwritable", session=sid, error=reason)
            run.failure = reason
            run.failed.set()
            run.abort.set()
            for p in list(run.pending.values()):
                if not p.future.done():
                    p.future.set_result(False if p.kind == "approval" else None)

    def reply(
        self, session_id: str, action_id: Any, *, approved: bool | None = None, answer: str | None = None
    ) -> None:
        """Answer a pending approval or question of a running session."""
        run = self.runs.get(session_id)
        if run is None:
            raise RunnerError(f"session {session_id} is not running", 409)
        pending = run.pending.get(action_id)
        if pending is None:
            waiting = ", ".join(str(k) for k in run.pending) or "none"
            raise RunnerError(
                f"action {action_id} of {session_id} is not waiting for a reply (waiting: {waiting})", 409
            )
        if pending.kind == "approval":
            if approved is None:
                raise RunnerError("this action waits for an approval: send approved=true|false")
            if not pending.future.done():
                pending.future.set_result(approved)
        elif not pending.future.done():
            pending.future.set_result(answer if answer is not None else pending.default)

    async def wait(self, session_id: str) -> str:
        """Wait for the session's current run to finish; its final status."""
        run = self.runs.get(session_id)
        if run is None or run.task is None:
            rec = await self.store.get_session(session_id)
            return rec.status if rec else "unknown"
        return await asyncio.shield(run.task)

    # -- the run ----------------------------------------------------------------------------

    async def _emit(self, run: Run, kind: str, data: dict[str, Any], *, wait: bool = True) -> Event:
        ev = Event(session=run.session_id, kind=kind, data=data)  # type: ignore[arg-type]
        await self._store_event(run, ev, wait=wait)
        return ev

    async def _store_event(self, run: Run, ev: Event, *, wait: bool = True) -> None:
        ev.session = run.session_id
        if run.redact is None:
            await self._store_one(run, ev, wait=wait)
            return
        for out in run.redact.feed(ev):
            await self._store_one(run, out, wait=wait)

    async def _flush_held(self, run: Run) -> None:
        if run.redact is not None:
            for out in run.redact.flush():
                await self._store_one(run, out, wait=False)
        if run.tokens is not None:
            run.tokens.flush()

    def _bound(self, ev: Event) -> None:
        # One huge string (a 100 MB line of output, a runaway answer) must not become one huge row.
        limit = self.settings.agent.max_event_chars
        for k, v in list(ev.data.items()):
            if isinstance(v, str) and len(v) > limit:
                ev.data[k] = v[:limit]
                ev.data[f"{k}_truncated"] = len(v) - limit

    async def _store_one(
        self, run: Run, ev: Event, *, wait: bool = True, bound_s: float | None = None
    ) -> None:
        ev.session = run.session_id
        self._bound(ev)
        tracker = self._trackers.get(run.session_id)
        if tracker:
            tracker.observe(ev)  # every token counts, merged or not
        if run.tokens is None:
            fut = self._submit(run, ev)
        elif run.tokens.hold(ev):
            return  # merged into a token that goes once the write before it is done
        else:
            fut = run.tokens.submit(ev)
        # The writer stores in order, so awaiting one event makes everything before it durable too.
        # The loop waits only where something irreversible follows: an action before its command
        # runs (its earlier output and observations with it), a question before a human answers,
        # and the end of a run. Waiting on every event cost ~15 ms per iteration (one commit each).
        if not (wait or ev.kind in _DURABLE_BEFORE_GOING_ON):
            return
        self.writer.hurry()  # this run waits for the write: no lingering for more events
        if bound_s is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(fut), bound_s)
            return
        if run.failure is None and not fut.done():
            # Wait for the write, or for the news that it failed (then the run stops at once).
            failed = asyncio.ensure_future(run.failed.wait())
            try:
                await asyncio.wait({fut, failed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                failed.cancel()
        if run.failure is not None:
            raise _LogWriteFailed(run.failure)
        await fut

    def _submit(self, run: Run, ev: Event) -> asyncio.Future[None]:
        """Give ``ev`` the run's next ``seq`` and queue it for the writer."""
        ev.seq = run.next_seq
        run.next_seq += 1
        if ev.kind == "approval_required" and not run.options.yes:
            run.expect(ev.data.get("action"), "approval", role=ev.data.get("role"))
        elif ev.kind == "ask" and not run.options.yes:
            run.expect(ev.data.get("action"), "ask", ev.data.get("default"))
        return self.writer.submit(ev)

    async def _drive(self, run: Run, prior: list[Event]) -> str:
        sid = run.session_id
        # The run's task has its own context copy: the binding stays with this run's log lines.
        structlog.contextvars.bind_contextvars(session=sid)
        t0 = time.perf_counter()
        last: Event | None = None
        status = "failed"
        # Not the goal itself: it may name hosts, users or secrets, and the daemon log is not the
        # session log (journald keeps it, other tools ship it). The id leads to it for who may read.
        log.info("run_started", goal_chars=len(run.goal), resumed=bool(prior), prior_events=len(prior))
        try:
            if run.options.node is not None:
                # Before anything runs: the log says where this run's commands go.
                t = run.options.target
                await self._emit(run, "node", {"node": run.options.node, "target": getattr(t, "name", None),
                                               "transport": type(t).__name__})  # fmt: skip
            stream = self._open_loop(run, prior)
            try:
                async for ev in stream:
                    if run.failure is not None:
                        break  # closing the loop kills its running command
                    await self._store_event(run, ev, wait=False)
                    if ev.kind != "token":
                        last = ev
            except _LogWriteFailed:
                pass
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]
            if run.failure is not None:
                # What was accepted is kept (the writer retries it); nothing more of the loop is.
                last = Event(session=sid, kind="error", data={"message": (
                    f"the session log could not be written ({run.failure}); the session stopped "
                    "so that nothing runs unrecorded — free disk space, then resume it"
                ), "fatal": True})  # fmt: skip
                for out in run.redact.flush() if run.redact else []:
                    await self._store_one(run, out, wait=False)
                await self._store_one(run, last, bound_s=FAILED_WRITE_WAIT_S)
                status = "failed"
                raise _LogWriteFailed(run.failure)
            await self._flush_held(run)
            if run.abort.is_set() and (last is None or last.kind not in TERMINAL_KINDS):
                last = await self._emit(run, "aborted", {"reason": "aborted by the operator"})
            elif last is None or (last.kind not in TERMINAL_KINDS and last.kind != "error"):
                last = await self._emit(run, "error", {"message": "the agent loop ended without `done`"})
            status = _status_of(last)
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        except _LogWriteFailed:
            status = "failed"
        except Exception as e:
            log.exception("run_crashed", error=str(e))
            with contextlib.suppress(Exception):
                last = await self._emit(run, "error", {"message": f"internal error: {e}", "fatal": True})
            status = "failed"
        finally:
            if run.tokens is not None:
                run.tokens.flush()  # accepted tokens are stored, interrupted or not
            summary = None
            if status != "interrupted" and last is not None:
                last = self.writer.redactor.event(last)
                if last.kind == "done":
                    summary = str(last.data.get("answer") or "")[:1000]
                else:
                    summary = str(last.data.get("message") or last.data.get("reason") or last.kind)[:1000]
            # The row is final before followers hear the run ended (they may read it at once).
            # Written by the writer, after this run's events: it waits (and retries) with them on a
            # full disk, so the row never stays `running` once anything can be written.
            try:
                await asyncio.wait_for(
                    asyncio.shield(self.writer.submit_status(sid, status, summary)),
                    FAILED_WRITE_WAIT_S if run.failure or self.writer.failure else None,
                )
            except TimeoutError:
                log.error("status_update_pending", status=status, error=self.writer.failure)
            except Exception as e:
                log.error("status_update_failed", error=str(e), status=status)
            tracker = self._trackers.pop(sid, None)
            if tracker:
                tracker.finish(status)
            self.runs.pop(sid, None)
            self.hub.end_run(sid, status)
            if self.bus is not None:
                self.bus.publish_end(sid, status, run.next_seq - 1)
            run.status = status
            log.info("run_finished", status=status, seconds=round(time.perf_counter() - t0, 3))
        return status

    def loop(self) -> LoopFn:
        """The loop function runs use (the configured agent loop, made on first use)."""
        if self._loop_fn is None:
            from fazai.sessions.glue import AgentLoop

            self._loop_fn = self._owned_loop = AgentLoop(self.settings)
        return self._loop_fn

    def _open_loop(self, run: Run, prior: list[Event]) -> AsyncIterator[Event]:
        interaction = RunInteraction(self, run)
        if run.options.mode == "command":  # one read-only command, no model (fazai ask --command)
            from fazai.sessions.command_run import command_loop

            return command_loop(self.settings)(
                run.goal, session_id=run.session_id, abort=run.abort, options=run.options
            )
        return self.loop()(
            run.goal,
            session_id=run.session_id,
            interaction=interaction,
            abort=run.abort,
            prior_events=tuple(prior),
            options=run.options,
        )

    def _model_name(self) -> str:
        ap = self.settings.ai_provider
        return f"{ap.provider}:{ap.model}"
