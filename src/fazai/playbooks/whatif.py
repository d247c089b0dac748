"""What-if: plan every step of a playbook for a given trigger and print it; nothing runs.

Steps whose input comes from an earlier agent step are planned with a stand-in for that result
(``<answer of step X>``); their ``when`` is shown as decided at run time.
"""

from __future__ import annotations

from typing import Any

from fazai.playbooks.env import PlaybookEnv
from fazai.playbooks.guards import RateLimiter
from fazai.playbooks.plan import PlannedStep, plan_step
from fazai.playbooks.schema import Playbook


def what_if(pb: Playbook, ctx: dict[str, Any], env: PlaybookEnv) -> list[PlannedStep]:
    """The plan of every step (the same planning a run does, step by step)."""
    ctx = {**ctx, "playbook": pb.name, "steps": {}}
    out = []
    for step in pb.steps:
        ps = plan_step(pb, step, ctx, env)
        out.append(ps)
        sid = ps.id
        if step.kind == "agent" and ps.actions:
            ctx["steps"][sid] = {
                "pending": True,
                "status": f"<status of step {sid}>",
                "answer": f"<answer of step {sid}>",
                "session": f"<session of step {sid}>",
            }
        else:
            ctx["steps"][sid] = {"status": "skipped" if ps.skipped else "done"}
        if ps.refused:
            break  # a run stops here
    return out


def render_text(pb: Playbook, ctx: dict[str, Any], plan: list[PlannedStep], *, matched: bool | None) -> str:
    """The what-if as text for a terminal."""
    lines = [
        f"playbook {pb.name}: {pb.description}".rstrip(": "),
        f"trigger: {pb.trigger.kind} — {ctx.get('summary', '')}",
    ]
    if matched is False:
        lines.append("the trigger does NOT match: a real run would not start")
    if not pb.enabled:
        lines.append("the playbook is disabled: a real run would not start")
    lines.append(f"rate limit: {pb.rate_limit.max_runs} runs per {pb.rate_limit.per:g}s")
    for n, ps in enumerate(plan, 1):
        head = f"{n}. [{ps.id}] {ps.kind}"
        if ps.refused:
            lines.append(f"{head}: REFUSED — {ps.refused} (the run stops and rolls back here)")
            continue
        if ps.skipped:
            lines.append(f"{head}: skipped — {ps.skipped}")
            continue
        approval = (
            f"needs approval by role {ps.approval_role!r}" if ps.approval_role else "no approval needed"
        )
        lines.append(f"{head}: risk {ps.risk}, {approval}")
        when = next((s.when for s in pb.steps if s.id == ps.id and s.when), None)
        if when is not None:
            lines.append(f"   only if step {when.step!r} " + (f"ends {when.status!r}" if when.status else
                         f"answers with {when.answer_contains!r}"))  # fmt: skip
        if len(ps.stages) > 1:
            stages = " → ".join(", ".join(ps.actions[i].target for i in st) for st in ps.stages)
            lines.append(f"   rollout: {stages} (stops and rolls back on the first failure)")
        for a in ps.actions:
            lines.append(f"   on {a.target}: {a.summary}")
            if a.undo:
                lines.append(f"      undo: {a.undo}")
    lines.append("(what-if: nothing was changed)")
    return "\n".join(lines)


__all__ = ["RateLimiter", "render_text", "what_if"]
