"""One executor per action kind.

An executor is an async generator: it yields the events of its action as they happen and ends by
yielding one :class:`Outcome` (the observation for the model, and whether the run stops). The loop
offers the model only the kinds that have an executor; the knowledge issue adds ``research``,
``tool_spec``, ``use_tool`` and ``commit_kb`` through ``AgentDeps.executors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from fazai.agent.deps import AgentDeps, Interaction
from fazai.agent.observation import shell_observation
from fazai.protocol import AskAction, DoneAction, Event, ObserveAction, PlanAction, ShellAction
from fazai.targets.base import ExecResult, Stream, Target, TargetError

T = TypeVar("T")


@dataclass(slots=True)
class Outcome:
    """How an action ended. ``observation`` goes back to the model (None: nothing to say)."""

    observation: str | None
    status: str = "ok"
    data: dict[str, Any] = field(default_factory=dict)
    # "done": the run is over (the executor emitted the final event); "aborted": the operator aborted.
    stop: Literal["done", "aborted"] | None = None
    during: str = ""  # for "aborted": what was interrupted


@dataclass(slots=True)
class Step:
    """What an executor gets: the action's id and everything around it."""

    session_id: str
    action_id: int
    iteration: int
    deps: AgentDeps
    interaction: Interaction
    abort: asyncio.Event
    deadline: float  # time.monotonic() by which the session must end

    def event(self, kind: str, /, **data: Any) -> Event:
        """A new event of this session (seq is assigned by the store)."""
        return Event(session=self.session_id, kind=kind, data=data)  # type: ignore[arg-type]

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


Executor = Callable[[Any, Step], AsyncIterator[Event | Outcome]]


async def race_abort(aw: Awaitable[T], abort: asyncio.Event) -> tuple[bool, T | None]:
    """Await ``aw`` unless ``abort`` is set first; returns (aborted, result)."""
    task = asyncio.ensure_future(aw)
    stopper = asyncio.ensure_future(abort.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return False, task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return True, None


def _risk_name(risk: Any) -> str:
    return str(getattr(risk, "value", risk))


async def execute_plan(action: PlanAction, step: Step) -> AsyncIterator[Event | Outcome]:
    """Show the plan; no side effect."""
    yield step.event("plan", action=step.action_id, steps=list(action.steps))
    # Small models tend to re-emit the plan; name the concrete next move instead of a general rule.
    yield Outcome(
        f"plan recorded ({len(action.steps)} steps). Now carry out step 1 ({action.steps[0]!r}) with "
        "one action — a shell action for a command — not another plan."
    )


async def execute_observe(action: ObserveAction, step: Step) -> AsyncIterator[Event | Outcome]:
    """The model's own summary: recorded, then the loop goes on."""
    yield Outcome(
        "noted. If this answers the goal, finish now with done, putting the facts you found in its "
        "answer; otherwise take the next action.",
        data={"summary": action.summary, "next": action.next},
    )


async def execute_done(action: DoneAction, step: Step) -> AsyncIterator[Event | Outcome]:
    """End the goal with the model's answer."""
    yield step.event(
        "done",
        action=step.action_id,
        answer=action.answer,
        status=action.status,
        iterations=step.iteration,
        **({"mode": step.deps.mode, "answer_source": "model"} if step.deps.mode != "agent" else {}),
    )
    yield Outcome(None, status=action.status, stop="done")


async def execute_ask(action: AskAction, step: Step) -> AsyncIterator[Event | Outcome]:
    """Ask the operator; no answer possible (non-interactive, no default) stops the run as blocked."""
    yield step.event(
        "ask", action=step.action_id, question=action.question, options=action.options, default=action.default
    )
    aborted, answer = await race_abort(
        step.interaction.answer(step.action_id, action.question, action.options, action.default), step.abort
    )
    if aborted:
        yield Outcome(None, status="aborted", stop="aborted", during="ask")
        return
    if answer is None:
        text = f"blocked: the question needs an answer and nobody can give one: {action.question}"
        yield step.event(
            "done", action=step.action_id, answer=text, status="blocked", iterations=step.iteration
        )
        yield Outcome(None, status="blocked", stop="done")
        return
    yield step.event("reply", action=step.action_id, answer=answer)
    yield Outcome(f"the operator answered: {answer}")


def resolve_target(action: ShellAction, deps: AgentDeps) -> tuple[str, Target | None, Outcome]:
    """The action's target (or the default) by name; when unknown, ``None`` and the error outcome."""
    name = action.target or deps.default_target
    target = deps.targets.get(name)
    names = ", ".join(sorted(deps.targets)) or "(none)"
    return name, target, Outcome(f"unknown target {name!r}: available targets are {names}.", status="error")


# ``<user>``, ``<jail1>``, ``<a + b>``: the prompt's placeholders, never a real shell word (``< file``
# and ``<<EOF``, ``<(cmd)`` have a space, a second ``<`` or a parenthesis). Quoted text is left
# out: ``grep '<Directory>' apache2.conf`` is a real search.
_PLACEHOLDER = re.compile(r"<[A-Za-z](?:[\w .+-]*[\w.+-])?>")
_QUOTED = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"")


def placeholders(command: str) -> list[str]:
    """The prompt placeholders a small model copied into ``command`` (as shell, a redirection)."""
    return _PLACEHOLDER.findall(_QUOTED.sub("", command))


def placeholder_note(holes: list[str]) -> str:
    """What the model is told about a command that still holds placeholders (it did not run)."""
    return (
        f"NOT RUN: {', '.join(holes)} is a placeholder. Write the command again with a real value in "
        "its place (a name from the goal or from an earlier result), or pick a command that needs no value."
    )


async def execute_shell(action: ShellAction, step: Step) -> AsyncIterator[Event | Outcome]:
    """Policy check, approval if needed, then run on the target streaming its output."""
    deps, aid = step.deps, step.action_id
    if action.command is None:  # "commands" is the question mode's parallel form
        yield Outcome(
            'this mode runs one command per shell action: use "command" with a single command.',
            status="error",
        )
        return
    target_name, target, unknown = resolve_target(action, deps)
    if target is None:
        yield unknown
        return
    if holes := placeholders(action.command):
        yield Outcome(placeholder_note(holes), status="error", data={"command": action.command})
        return
    decision = deps.policy.check_command(action.command)
    risk, reasons = _risk_name(decision.risk), list(decision.reasons)
    if decision.verdict == "deny":
        why = "; ".join(reasons) or "forbidden"
        yield Outcome(
            f"FORBIDDEN by the safety policy ({risk}: {why}). The command did not run. "
            "Do not retry it; find a safe way or finish with done.",
            status="forbidden",
            data={"risk": risk, "reasons": reasons, "command": action.command},
        )
        return
    if decision.verdict != "allow":
        yield step.event(
            "approval_required",
            action=aid,
            summary=action.command,
            risk=risk,
            reasons=reasons,
            target=target_name,
            operator_only=bool(getattr(decision, "needs_operator", False)),
        )
        aborted, approved = await race_abort(
            step.interaction.approve(aid, action.command, risk, reasons), step.abort
        )
        if aborted:
            yield Outcome(None, status="aborted", stop="aborted", during="approval")
            return
        yield step.event("reply", action=aid, approved=bool(approved))
        if not approved:
            yield Outcome(
                "the operator DENIED this command; it did not run. Do not retry it: "
                "choose another way, ask, or finish with done.",
                status="denied",
                data={"risk": risk, "reasons": reasons, "command": action.command},
            )
            return
    limit = deps.settings.action_timeout_s
    timeout = min(action.timeout or limit, limit, max(step.remaining(), 0.1))
    # Output arrives in the target's callback; the queue hands it to this generator as events.
    queue: asyncio.Queue[Event] = asyncio.Queue()

    def on_output(stream: Stream, text: str) -> None:
        queue.put_nowait(step.event("exec_log", action=aid, stream=stream, text=text))

    task = asyncio.ensure_future(
        target.run(action.command, timeout=timeout, on_output=on_output, cancel=step.abort)
    )
    try:
        while not task.done() or not queue.empty():
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
            else:
                getter.cancel()
        try:
            result: ExecResult = task.result()
        except TargetError as e:
            yield Outcome(f"the command could not start on {target_name}: {e}", status="error")
            return
    finally:
        # The consumer went away mid-command: the target kills the process group when cancelled.
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    yield step.event(
        "exec_end",
        action=aid,
        exit_code=result.exit_code,
        duration_s=round(result.duration_s, 3),
        timed_out=result.timed_out,
        cancelled=result.cancelled,
    )
    if result.cancelled:
        yield Outcome(None, status="aborted", stop="aborted", during="command")
        return
    s = deps.settings
    text, data = shell_observation(
        aid, action.command, result, s.observation_head_chars, s.observation_tail_chars
    )
    yield Outcome(text, status=data.pop("status"), data=data)


DEFAULT_EXECUTORS: dict[str, Executor] = {
    "plan": execute_plan,
    "ask": execute_ask,
    "shell": execute_shell,
    "observe": execute_observe,
    "done": execute_done,
}
