"""Run a playbook as a session: the same ordered event log as an agent run.

Events: ``playbook`` (what started it), then per step ``step`` events (planned, approval, stage,
ok / retry / failed / skipped / rolled_back), ``exec_log`` for command output, the usual
``approval_required`` / ``reply`` pair where the step's risk class names an approver role, and a
final ``done`` whose status is ``success`` or ``failed`` with the reason. The first failed action
stops the run and rolls back, newest first, every change the run made.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

from fazai.playbooks.env import PlaybookEnv
from fazai.playbooks.execute import ActionFailed, execute, rollback
from fazai.playbooks.plan import Action, PlannedStep, plan_step
from fazai.playbooks.schema import Playbook, Step
from fazai.protocol import Event

_END = object()


class _Failed(Exception):
    pass


class PlaybookRun:
    """One run; :meth:`events` drives it and yields its events."""

    def __init__(
        self,
        pb: Playbook,
        ctx: dict[str, Any],
        env: PlaybookEnv,
        *,
        session_id: str,
        interaction: Any,
        abort: asyncio.Event,
    ):
        self.pb = pb
        self.ctx = {**ctx, "playbook": pb.name, "steps": dict(ctx.get("steps", {}))}
        self.env = env
        self.session_id = session_id
        self.interaction = interaction
        self.abort = abort
        self._q: asyncio.Queue[Any] = asyncio.Queue()
        self._done: list[tuple[Action, dict[str, Any]]] = []
        self._ids = itertools.count(1)

    async def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Queue one event of this session."""
        await self._q.put(Event(session=self.session_id, kind=kind, data=data))  # type: ignore[arg-type]

    async def events(self) -> AsyncIterator[Event]:
        """Run the playbook; its events in order."""
        task = asyncio.create_task(self._main())
        try:
            while True:
                item = await self._q.get()
                if item is _END:
                    break
                yield item
            await task
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _main(self) -> None:
        try:
            await self._run()
        finally:
            await self._q.put(_END)

    async def _run(self) -> None:
        pb = self.pb
        await self.emit(
            "playbook",
            {"name": pb.name, "description": pb.description, "trigger": pb.trigger.kind,
             "summary": self.ctx.get("summary", ""), "steps": [s.id for s in pb.steps]},
        )  # fmt: skip
        done_steps: list[str] = []
        try:
            for step in pb.steps:
                if self.abort.is_set():
                    await self.emit(
                        "aborted", {"reason": "aborted by the operator", "after_steps": done_steps}
                    )
                    return
                status = await self._step(step)
                if status == "aborted":
                    await self.emit(
                        "aborted", {"reason": "aborted by the operator", "after_steps": done_steps}
                    )
                    return
                done_steps.append(f"{step.id}: {status}")
        except _Failed as e:
            undone = await self._rollback()
            tail = f"; rolled back: {'; '.join(undone)}" if undone else ""
            await self.emit("done", {"status": "failed", "answer": f"{e}{tail}", "rolled_back": undone})
            return
        await self.emit(
            "done",
            {"status": "success", "answer": f"playbook {pb.name}: " + ", ".join(done_steps),
             "changes": len(self._done)},
        )  # fmt: skip

    async def _step(self, step: Step) -> str:
        ps = plan_step(self.pb, step, self.ctx, self.env)
        await self.emit("step", {"step": ps.id, "status": "planned", **_plan_data(ps)})
        if ps.refused:
            raise _Failed(f"step {ps.id} refused: {ps.refused}")
        if ps.skipped or not ps.actions:
            await self.emit(
                "step", {"step": ps.id, "status": "skipped", "reason": ps.skipped or "nothing to do"}
            )
            self.ctx["steps"][ps.id] = {"status": "skipped", "reason": ps.skipped}
            return "skipped"
        if ps.approval_role:
            approved = await self._approve(ps)
            if approved is None:
                return "aborted"
            if not approved:
                raise _Failed(f"step {ps.id} was not approved ({ps.risk} needs role {ps.approval_role!r})")
        results: list[dict[str, Any]] = []
        for n, stage in enumerate(ps.stages):
            targets = [ps.actions[i].target for i in stage]
            if len(ps.stages) > 1:
                await self.emit(
                    "step", {"step": ps.id, "status": "stage", "stage": n + 1, "targets": targets}
                )
            outcomes = await asyncio.gather(*(self._attempt(step, ps.actions[i]) for i in stage))
            failed = [(ps.actions[i], o) for i, o in zip(stage, outcomes, strict=True) if isinstance(o, str)]
            for i, o in zip(stage, outcomes, strict=True):
                if isinstance(o, dict):
                    self._done.append((ps.actions[i], o))
                    results.append(o)
            if failed:
                action, why = failed[0]
                where = f" (stage {n + 1} of {len(ps.stages)})" if len(ps.stages) > 1 else ""
                raise _Failed(f"step {ps.id} failed on {action.target}{where}: {why}")
            if self.abort.is_set():
                return "aborted"
        res: dict[str, Any] = {"status": "done"}
        if step.kind == "agent" and results:
            res = {"status": str(results[0].get("status")), "answer": results[0].get("answer", ""),
                   "session": results[0].get("session")}  # fmt: skip
        self.ctx["steps"][ps.id] = res
        return res["status"]

    async def _approve(self, ps: PlannedStep) -> bool | None:
        aid = f"{ps.id}#{next(self._ids)}"
        summary = "\n".join(a.summary + f" [on {a.target}]" for a in ps.actions)
        reasons = sorted({r for a in ps.actions for r in a.reasons})
        await self.emit(
            "approval_required",
            {"action": aid, "summary": summary, "risk": ps.risk, "reasons": reasons,
             "role": ps.approval_role, "step": ps.id},
        )  # fmt: skip
        approve = asyncio.ensure_future(self.interaction.approve(aid, summary, ps.risk, reasons))
        stop = asyncio.ensure_future(self.abort.wait())
        await asyncio.wait({approve, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        # An abort also answers pending approvals (with a no): it is an abort, not a refusal.
        if self.abort.is_set() or not approve.done():
            approve.cancel()
            return None
        ok = bool(approve.result())
        await self.emit("reply", {"action": aid, "approved": ok})
        return ok

    async def _attempt(self, step: Step, action: Action) -> dict[str, Any] | str:
        """The action's result, or why it failed after its retries."""
        for attempt in range(1 + step.retries):
            try:
                out = await execute(action, self.env, self.emit, self.abort)
            except ActionFailed as e:
                if not e.retryable or attempt == step.retries:
                    extra = f" (after {attempt + 1} attempts)" if attempt else ""
                    await self.emit(
                        "step", {"step": action.step, "target": action.target, "status": "failed",
                                 "error": str(e), "attempts": attempt + 1},
                    )  # fmt: skip
                    return f"{e}{extra}"
                delay = step.backoff * 2**attempt
                await self.emit(
                    "step", {"step": action.step, "target": action.target, "status": "retry",
                             "attempt": attempt + 1, "error": str(e), "retry_in_s": delay},
                )  # fmt: skip
                await self.env.sleep(delay)
                continue
            await self.emit(
                "step", {"step": action.step, "target": action.target, "status": "ok", "result": out}
            )
            return out
        return "no attempt was made"  # pragma: no cover - the loop always returns

    async def _rollback(self) -> list[str]:
        undone: list[str] = []
        for action, result in reversed(self._done):
            try:
                what = await rollback(action, result, self.env)
            except Exception as e:
                await self.emit(
                    "step",
                    {
                        "step": action.step,
                        "target": action.target,
                        "status": "rollback_failed",
                        "error": str(e),
                    },
                )
                undone.append(f"{action.step}@{action.target}: undo FAILED ({e})")
                continue
            if what:
                undone.append(f"{action.step}@{action.target}: {what}")
                await self.emit(
                    "step",
                    {"step": action.step, "target": action.target, "status": "rolled_back", "undo": what},
                )
        self._done.clear()
        return undone


def _plan_data(ps: PlannedStep) -> dict[str, Any]:
    actions = [{"target": a.target, "summary": a.summary, "undo": a.undo} for a in ps.actions]
    return {"kind": ps.kind, "risk": ps.risk, "approval_role": ps.approval_role, "skipped": ps.skipped,
            "refused": ps.refused, "stages": [[ps.actions[i].target for i in st] for st in ps.stages],
            "actions": actions}  # fmt: skip


async def run_playbook(
    pb: Playbook,
    ctx: dict[str, Any],
    env: PlaybookEnv,
    *,
    session_id: str,
    interaction: Any,
    abort: asyncio.Event,
) -> AsyncIterator[Event]:
    """The events of one run of ``pb`` triggered with ``ctx`` (see the module docstring)."""
    run = PlaybookRun(pb, ctx, env, session_id=session_id, interaction=interaction, abort=abort)
    async for ev in run.events():
        yield ev
