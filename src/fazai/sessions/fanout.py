"""Fan-out: one goal or question on every node a selector picks, each node its own session.

``fan_out`` starts one run per node (``RunOptions.node``) with at most ``concurrency`` at once, waits
for each, and reads the answer from that session's log. A node that cannot be reached (unknown,
offline, unreachable, no gateway) or whose run fails gets its own row with the reason: the report
always has exactly one row per selected node. The summary compares the answers: "2 of 5 nodes differ
from the most common answer".
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from fazai.sessions.manager import RunnerError, RunOptions, SessionManager
from fazai.store.inventory import Inventory
from fazai.store.selector import Selector, parse_selector

ANSWERED = ("done", "unverified")


@dataclass
class NodeResult:
    """What one node's run came to. ``status``: done, unverified, failed, aborted, interrupted, or
    (no session) unknown, offline, unreachable, unsupported, error."""

    node: str
    status: str
    session: str | None = None
    answer: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    differs: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node, "status": self.status, "session": self.session, "answer": self.answer,
            "error": self.error, "duration_s": round(self.duration_s, 3), "differs": self.differs,
        }  # fmt: skip


@dataclass
class FanoutReport:
    """One row per selected node, plus how the answers compare."""

    selector: str
    goal: str
    mode: str
    results: list[NodeResult] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def answered(self) -> list[NodeResult]:
        return [r for r in self.results if r.status in ANSWERED]

    @property
    def majority(self) -> str | None:
        """The most common (normalised) answer among the nodes that answered."""
        counts = Counter(_norm(r.answer) for r in self.answered)
        return counts.most_common(1)[0][0] if counts else None

    def summary(self) -> str:
        """``"2 of 5 nodes differ from the most common answer (3 nodes); 1 unreachable (db-02)"``."""
        total = len(self.results)
        if total == 0:
            return f"no node matches {self.selector!r}"
        answered = self.answered
        differ = [r for r in answered if r.differs]
        parts = []
        if answered:
            same = len(answered) - len(differ)
            parts.append(
                f"{len(differ)} of {total} node{'s' if total != 1 else ''} differ from the most common "
                f"answer ({same} node{'s' if same != 1 else ''})"
            )
        others: dict[str, list[str]] = {}
        for r in self.results:
            if r.status not in ANSWERED:
                others.setdefault(r.status, []).append(r.node)
        for status, nodes in sorted(others.items()):
            shown = ", ".join(nodes[:5]) + (f", +{len(nodes) - 5} more" if len(nodes) > 5 else "")
            parts.append(f"{len(nodes)} {status} ({shown})")
        if not answered:
            parts.insert(0, f"none of {total} node{'s' if total != 1 else ''} answered")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "selector": self.selector, "goal": self.goal, "mode": self.mode,
            "nodes": [r.to_dict() for r in self.results], "summary": self.summary(),
            "differ": sum(r.differs for r in self.results), "total": len(self.results),
            "answered": len(self.answered), "wall_s": round(self.wall_s, 3),
        }  # fmt: skip


def _norm(text: str | None) -> str:
    return re.sub(r"\s+", " ", (text or "").strip()).lower()


async def _deny_approvals(manager: SessionManager, session_id: str) -> None:
    """Nobody answers a fan-out's runs one by one: an approval they wait for is denied (--yes gives
    those within policy instead), so a run on many nodes never hangs on a question."""
    while (run := manager.runs.get(session_id)) is not None:
        for p in list(run.pending.values()):
            if not p.future.done():
                p.future.set_result(False if p.kind == "approval" else p.default)
        await asyncio.sleep(0.1)


async def _one(manager: SessionManager, node: str, goal: str, options: RunOptions) -> NodeResult:
    t0 = time.monotonic()
    try:
        run = await manager.start_run(goal=goal, options=replace(options, node=node, target=None))
    except RunnerError as e:
        return NodeResult(node, e.reason or "error", error=str(e), duration_s=time.monotonic() - t0)
    denier = asyncio.ensure_future(_deny_approvals(manager, run.session_id))
    try:
        status = await manager.wait(run.session_id)
    finally:
        denier.cancel()
    res = NodeResult(node, status, session=run.session_id, duration_s=time.monotonic() - t0)
    for ev in reversed(await manager.store.events(run.session_id)):
        if ev.kind == "done":
            res.answer = str(ev.data.get("answer") or "")
            break
        if ev.kind in ("error", "aborted"):
            res.error = str(ev.data.get("message") or ev.data.get("reason") or ev.kind)
            break
    return res


async def fan_out(
    manager: SessionManager,
    selector: Selector | str,
    goal: str,
    options: RunOptions | None = None,
    *,
    concurrency: int | None = None,
) -> FanoutReport:
    """Run ``goal`` on every node ``selector`` picks (each its own session); one row per node."""
    sel = parse_selector(selector) if isinstance(selector, str) else selector
    opts = options or RunOptions()
    limit = concurrency or manager.settings.nodes.fanout_concurrency
    t0 = time.monotonic()
    nodes = await Inventory(manager.store.engine).list(sel)
    report = FanoutReport(str(sel), goal, opts.mode)
    gate = asyncio.Semaphore(limit)

    async def bounded(name: str) -> NodeResult:
        async with gate:
            try:
                return await _one(manager, name, goal, opts)
            except Exception as e:  # one node's surprise must not lose the others' rows
                return NodeResult(name, "error", error=f"{type(e).__name__}: {e}")

    report.results = list(await asyncio.gather(*(bounded(n.name) for n in nodes)))
    majority = report.majority
    for r in report.answered:
        r.differs = _norm(r.answer) != majority
    report.wall_s = time.monotonic() - t0
    return report
