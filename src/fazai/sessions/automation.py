"""The daemon's automation: EVE files followed, local facts sampled, playbooks started on alerts,
metric thresholds, schedules and node state changes — each run a session of the same runner.

No HTTP here (the daemon's routes call these methods); the embedded CLI can use it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import insert, select

from fazai.auth.policy import Scope
from fazai.auth.users import SessionScopes
from fazai.config import Settings
from fazai.opnsense.alerts import SuricataAlert
from fazai.playbooks import Playbook, PlaybookError, load_dir
from fazai.playbooks.context import alert_context, metric_context, node_context, schedule_context
from fazai.playbooks.guards import RateLimiter
from fazai.playbooks.match import MetricWatch, ScheduleClock, matching_alert_playbooks, node_state_matches
from fazai.protocol import utcnow_iso
from fazai.sessions.manager import RunOptions, SessionManager
from fazai.sessions.playbook_loop import PendingRun, PlaybookLoop
from fazai.telemetry import EveIngest, MetricStore, Retention, StoredAlert, follow_lines
from fazai.telemetry.local import LocalSource, node_name
from fazai.telemetry.opnsense_source import sample_firewall
from fazai.telemetry.prom import TelemetryCollector
from fazai.telemetry.tables import playbook_runs

log = structlog.get_logger("fazai.automation")

_COMPACT_EVERY_S = 600.0


class Automation:
    """Owns ingest, metrics, loaded playbooks and the tasks that feed them."""

    def __init__(self, settings: Settings, manager: SessionManager, loop: PlaybookLoop):
        self.settings = settings
        self.manager = manager
        self.loop = loop
        t = settings.telemetry
        self.metrics = MetricStore(
            manager.store.engine, Retention(t.raw_retention_s, t.rollup_step_s, t.rollup_retention_s)
        )
        self.collector = TelemetryCollector()
        self.ingests: dict[str, EveIngest] = {}
        self.books: list[Playbook] = []
        self.errors: list[PlaybookError] = []
        self.limiter = RateLimiter()
        self.watch = MetricWatch()
        self.schedule = ScheduleClock()
        self.node_states: dict[str, str] = {}
        self.skipped: deque[dict[str, Any]] = deque(maxlen=200)
        self._tasks: list[asyncio.Task[None]] = []
        loop.env.agent = self._agent_session

    @property
    def playbook_dir(self) -> Path:
        return self.settings.playbooks.dir or self.settings.paths.state_dir / "playbooks"

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load playbooks, seed rate limits from the store, start followers, sampler and ticker."""
        self.reload()
        async with self.manager.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(playbook_runs.c.playbook, playbook_runs.c.created).where(
                        playbook_runs.c.created > time.time() - 86400
                    )
                )
            ).all()
        for name in {r.playbook for r in rows}:
            self.limiter.seed(name, [r.created for r in rows if r.playbook == name])
        t = self.settings.telemetry
        for path in t.eve_files:
            self._spawn(self._follow(Path(path), t.eve_from_start), f"eve:{path}")
        if t.sample_interval_s > 0:
            self._spawn(self._sample_local(t.sample_interval_s), "sampler")
        for name in t.firewalls:
            self._spawn(self._sample_firewall(name, t.firewall_interval_s), f"fw:{name}")
        for name in t.alert_firewalls:
            self._spawn(self._poll_alerts(name, t.alert_poll_s), f"ids:{name}")
        self._spawn(self._tick(), "ticker")

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"fazai-automation-{name}"))

    async def stop(self) -> None:
        """Stop the tasks and write what was ingested."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for ing in self.ingests.values():
            with contextlib.suppress(Exception):
                await ing.flush()

    def reload(self) -> dict[str, Any]:
        """Re-read the playbook folder; what loaded and what did not."""
        if not self.settings.playbooks.enabled:
            self.books, self.errors = [], []
        else:
            self.books, self.errors = load_dir(self.playbook_dir)
        for e in self.errors:
            log.warning("playbook_invalid", error=str(e))
        return self.describe()

    def describe(self) -> dict[str, Any]:
        """Loaded playbooks and load errors (for ``GET /playbooks``)."""
        return {
            "dir": str(self.playbook_dir),
            "playbooks": [
                {"name": b.name, "description": b.description, "enabled": b.enabled,
                 "trigger": b.trigger.kind, "steps": [s.id for s in b.steps]}
                for b in self.books
            ],
            "errors": [str(e) for e in self.errors],
        }  # fmt: skip

    # -- alerts ---------------------------------------------------------------------------------

    async def ingest(self, source: str) -> EveIngest:
        """The ingest of ``source`` (created, with its open dedup groups, on first use)."""
        ing = self.ingests.get(source)
        if ing is None:
            ing = EveIngest(
                self.manager.store.engine, source, window_s=self.settings.telemetry.dedup_window_s
            )
            await ing.load_open_groups()
            self.ingests[source] = ing
            self.collector.ingests[source] = ing.counters
        return ing

    async def ingest_lines(self, source: str, lines: list[str]) -> dict[str, Any]:
        """Ingest EVE lines; new alerts start their playbooks. Counts, new alert ids, sessions started."""
        ing = await self.ingest(source)
        new = [a for a in (ing.feed_line(x) for x in lines) if a is not None]
        await ing.flush()
        sessions: list[str] = []
        for a in new:
            sessions += await self.on_alert(a)
        return {"source": source, "counters": ing.counters.as_dict(), "new": [a.id for a in new],
                "sessions": sessions}  # fmt: skip

    async def ingest_records(self, source: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Ingest decoded EVE records (the HTTP endpoint's JSON bodies)."""
        ing = await self.ingest(source)
        new = [a for a in (ing.feed_record(r) for r in records) if a is not None]
        await ing.flush()
        sessions: list[str] = []
        for a in new:
            sessions += await self.on_alert(a)
        return {"source": source, "counters": ing.counters.as_dict(), "new": [a.id for a in new],
                "sessions": sessions}  # fmt: skip

    async def on_alert(self, stored: StoredAlert) -> list[str]:
        """Start every matching playbook for a new (deduplicated) alert."""
        out = []
        for pb in matching_alert_playbooks(self.books, stored.alert, stored.source):
            ctx = alert_context(stored.alert, alert_id=stored.id, source=stored.source)
            sid = await self.start_playbook(pb, ctx, alert=stored.alert, alert_id=stored.id)
            if sid:
                out.append(sid)
        return out

    async def poll_alerts_once(self, name: str, seen: set[tuple[Any, Any]], *, first: bool) -> dict[str, Any]:
        """One ``queryAlerts`` poll of firewall ``name``: alerts not seen before are ingested (source
        ``ids:<name>``); on the ``first`` poll they are only marked seen (they predate the daemon)."""
        pool = self.loop.env.firewalls
        if pool is None:
            raise LookupError("no firewall pool")
        batch = await (await pool.get(name)).query_alerts(100)
        ing = await self.ingest(f"ids:{name}")
        new: list[StoredAlert] = []
        for a in reversed(batch):  # oldest first
            key = (a.fileid, a.filepos)
            if key in seen:
                continue
            seen.add(key)
            if not first:
                stored = ing.feed_alert(a, a.event_data())
                if stored is not None:
                    new.append(stored)
        await ing.flush()
        sessions: list[str] = []
        for stored in new:
            sessions += await self.on_alert(stored)
        return {"new": [x.id for x in new], "sessions": sessions}

    async def _poll_alerts(self, name: str, every: float) -> None:
        seen: set[tuple[Any, Any]] = set()
        first = True
        while True:
            try:
                await self.poll_alerts_once(name, seen, first=first)
                first = False
            except Exception as e:  # the firewall may be down: try again next period
                log.warning("ids_poll_failed", firewall=name, error=str(e))
            if len(seen) > 100_000:  # queryAlerts returns the newest 100: old keys never come back
                seen.clear()
                first = True
            await asyncio.sleep(every)

    async def _follow(self, path: Path, from_start: bool) -> None:
        source = f"eve:{path}"
        async for batch in follow_lines(path, from_start=from_start, poll_s=self.settings.telemetry.poll_s):
            try:
                await self.ingest_lines(source, batch)
            except Exception as e:  # keep following: the next batch may go through
                log.error("eve_ingest_failed", source=source, error=str(e))

    # -- metrics, schedules, node states -----------------------------------------------------------

    async def record_agent_metrics(self, node: str, batch: list[Any]) -> None:
        """A fleet agent's ``telemetry.push`` batch (``wire.Metric``: name, value, ISO time) as samples.

        A metric's labels (e.g. the newest journal lines of ``journal_errors``) are not stored — the
        store keeps numbers — but a playbook started by that sample sees them as ``metric.labels``."""
        by_ts: dict[float, dict[str, float]] = {}
        labels: dict[float, dict[str, dict[str, str]]] = {}
        for m in batch:
            try:
                ts = datetime.fromisoformat(m.ts).timestamp()
            except ValueError:
                ts = float(m.ts)  # epoch seconds; a bad one raises, and the batch is not acked
            by_ts.setdefault(ts, {})[m.name] = m.value
            if m.labels:
                labels.setdefault(ts, {})[m.name] = dict(m.labels)
        for ts, values in sorted(by_ts.items()):
            await self.record_metrics(node, values, ts, labels.get(ts))

    async def record_metrics(
        self,
        node: str,
        values: dict[str, float],
        ts: float | None = None,
        labels: dict[str, dict[str, str]] | None = None,
    ) -> list[str]:
        """Store samples of ``node``; start metric playbooks whose threshold has held long enough."""
        ts = time.time() if ts is None else ts
        await self.metrics.record(node, values, ts)
        for name, v in values.items():
            self.collector.latest[(node, name)] = (ts, float(v))
        out = []
        for pb in self.books:
            m = pb.trigger.metric
            if m is None or not pb.enabled or m.name not in values:
                continue
            value = float(values[m.name])
            if self.watch.observe(pb, node, m.name, value, ts):
                threshold = m.above if m.above is not None else m.below
                ctx = metric_context(
                    node, m.name, value, float(threshold or 0), m.for_s, (labels or {}).get(m.name)
                )
                sid = await self.start_playbook(pb, ctx)
                if sid:
                    out.append(sid)
        return out

    async def node_state(self, node: str, state: str) -> list[str]:
        """Record a node's state; start node_state playbooks on a change."""
        old = self.node_states.get(node)
        self.node_states[node] = state
        out = []
        for pb in self.books:
            m = pb.trigger.node_state
            if m is not None and pb.enabled and node_state_matches(m, node, old, state):
                sid = await self.start_playbook(pb, node_context(node, old, state))
                if sid:
                    out.append(sid)
        return out

    async def _sample_local(self, every: float) -> None:
        src, node = LocalSource(), node_name()
        while True:
            try:
                await self.record_metrics(node, src.sample())
            except Exception as e:
                log.error("local_sample_failed", error=str(e))
            await asyncio.sleep(every)

    async def sample_firewall_once(self, name: str) -> list[str]:
        """Sample firewall ``name`` into node ``fw:<name>``; its node state is ``up`` or ``down``."""
        node = f"fw:{name}"
        pool = self.loop.env.firewalls
        try:
            if pool is None:
                raise LookupError("no firewall pool")
            values = await sample_firewall(await pool.get(name))
        except Exception as e:  # unreachable, refused, unknown: the node is down, say why
            log.warning("firewall_sample_failed", firewall=name, error=str(e))
            return await self.node_state(node, "down")
        return [*await self.node_state(node, "up"), *await self.record_metrics(node, values)]

    async def _sample_firewall(self, name: str, every: float) -> None:
        while True:
            await self.sample_firewall_once(name)
            await asyncio.sleep(every)

    async def _tick(self) -> None:
        last_compact = time.monotonic()
        while True:
            for pb in self.schedule.tick(self.books, time.time()):
                await self.start_playbook(pb, schedule_context(utcnow_iso()))
            if time.monotonic() - last_compact > _COMPACT_EVERY_S:
                last_compact = time.monotonic()
                try:
                    out = await self.metrics.compact()
                    log.info("metrics_compacted", **out)
                except Exception as e:
                    log.error("metrics_compact_failed", error=str(e))
            await asyncio.sleep(1.0)

    # -- runs -----------------------------------------------------------------------------------

    async def start_playbook(
        self,
        pb: Playbook,
        ctx: dict[str, Any],
        *,
        alert: SuricataAlert | None = None,
        alert_id: str | None = None,
    ) -> str | None:
        """Start a run of ``pb`` as a session; its id, or None when the rate limit refused it."""
        why = self.limiter.check(pb)
        if why:
            self.skipped.append(
                {"playbook": pb.name, "reason": why, "summary": ctx.get("summary"), "ts": time.time()}
            )
            log.warning("playbook_skipped", playbook=pb.name, reason=why)
            return None
        rec = await self.manager.create(
            f"playbook {pb.name}: {ctx.get('summary') or ctx.get('trigger')}", mode="playbook"
        )
        # The run belongs to the playbook's site: who may read, abort and approve it.
        await SessionScopes(self.manager.store.engine).set(rec.id, Scope.parse(pb.site))
        self.loop.pending[rec.id] = PendingRun(pb, ctx, alert)
        trigger = {k: v for k, v in ctx.items() if k in ("alert", "metric", "node", "trigger", "summary")}
        async with self.manager.store.engine.begin() as conn:
            await conn.execute(
                insert(playbook_runs).values(
                    session=rec.id, playbook=pb.name, trigger=trigger, alert_id=alert_id, created=time.time()
                )
            )
        await self.manager.start_run(session_id=rec.id, options=RunOptions(mode="playbook"))
        log.info("playbook_started", playbook=pb.name, session=rec.id)
        return rec.id

    async def _agent_session(self, goal: str, max_iterations: int | None) -> dict[str, Any]:
        """An agent step: a session of its own; its final status and summary feed later steps."""
        run = await self.manager.start_run(goal=goal, options=RunOptions(max_iterations=max_iterations))
        status = await self.manager.wait(run.session_id)
        rec = await self.manager.store.get_session(run.session_id)
        return {"session": run.session_id, "status": status, "answer": rec.summary if rec else ""}

    async def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recent playbook runs with their session's status."""
        from fazai.store.schema import sessions

        q = (
            select(playbook_runs, sessions.c.status, sessions.c.summary)
            .join(sessions, sessions.c.id == playbook_runs.c.session)
            .order_by(playbook_runs.c.created.desc())
            .limit(limit)
        )
        async with self.manager.store.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [
            {"session": r.session, "playbook": r.playbook, "status": r.status, "summary": r.summary,
             "alert_id": r.alert_id, "created": r.created, "trigger": r.trigger}
            for r in rows
        ]  # fmt: skip
