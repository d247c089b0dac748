"""The think → act → observe loop (ARCHITECTURE §3), as one plain async generator of events.

    context → generate until the first valid action → policy → execute → observe → repeat

No HTTP, terminal or database in here: the daemon stores and fans out the events (assigning ``seq``),
the CLI renders them. Every failure ends the run with an ``error`` event instead of an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from fazai.agent.answer_gate import AnswerGate
from fazai.agent.deps import AgentDeps, Interaction
from fazai.agent.direct_run import DirectRun
from fazai.agent.executors import DEFAULT_EXECUTORS, Outcome, Step
from fazai.agent.grammar import grammar_for
from fazai.agent.history import History, history_from_events, interrupted_note
from fazai.agent.prompt import build_messages, offered_actions
from fazai.models.base import Constraint, Final, Message, ModelSession, ProviderError
from fazai.protocol import ACTION_KINDS, ActionStreamParser, DoneAction, Event, ParseFailure, action_line

log = logging.getLogger(__name__)
_REPEATED = (
    "you repeated an earlier action exactly, so it was not run again: its result is above and "
    "nothing has changed since. Finish now with done: put the facts you found in the answer, "
    'status "success" if they answer the goal, "failed" if they do not.'
)
_CUT = "the answer hit the token limit before an action was complete: keep the reasoning short"


async def run_agent(
    goal: str,
    *,
    session_id: str,
    deps: AgentDeps,
    interaction: Interaction,
    abort: asyncio.Event,
    prior_events: Sequence[Event] = (),
) -> AsyncIterator[Event]:
    """Work on ``goal`` until done, a limit, an abort or an error; yield every event as it happens.

    ``prior_events`` (the session's log) make this a continuation: with the same goal as an
    unfinished run (or an empty ``goal``) the run resumes; otherwise ``goal`` is a new goal on top of
    the session's history. Events have ``seq=0``: the store assigns it. A final answer is checked
    against the session's evidence before it may end ``success`` (:mod:`fazai.agent.answer_gate`).
    """
    gate = AnswerGate(enabled=deps.settings.grounding, retries=deps.settings.grounding_retries)
    for e in _current_goal(prior_events):
        gate.see(e.kind, e.data)
    run = _run(goal, session_id, deps, interaction, abort, prior_events, gate)
    async with aclosing(run) as events:
        async for e in events:
            gate.see(e.kind, e.data)
            yield e


def _current_goal(events: Sequence[Event]) -> Sequence[Event]:
    """The events since the last goal started: an earlier goal's output is not this answer's evidence."""
    starts = [i for i, e in enumerate(events) if e.kind == "context" and "goal" in e.data]
    return events[starts[-1] :] if starts else events


async def _run(
    goal: str,
    session_id: str,
    deps: AgentDeps,
    interaction: Interaction,
    abort: asyncio.Event,
    prior_events: Sequence[Event],
    gate: AnswerGate,
) -> AsyncIterator[Event]:
    s, ev = deps.settings, _EventFactory(session_id)
    executors = {**DEFAULT_EXECUTORS, **deps.executors}
    offered = offered_actions(executors, ACTION_KINDS)  # only kinds that have an executor
    if deps.only_actions is not None:  # a mode (``fazai ask``) offers fewer
        offered = [k for k in offered if k in deps.only_actions]
    history = history_from_events(prior_events)
    deadline = time.monotonic() + s.session_timeout_s
    session: ModelSession | None = None
    try:
        begin = await _begin(goal, history, deps, ev)
        for e in begin:
            yield e
        if any(e.kind == "error" for e in begin):
            return
        if deps.direct is not None and any(e.kind == "context" for e in begin):
            recipes = DirectRun(
                deps, history, gate, ev, Step(session_id, 0, 1, deps, interaction, abort, deadline)
            )
            async with aclosing(recipes.run()) as direct_events:
                async for e in direct_events:
                    yield e
            if recipes.ended:
                return
        session = await deps.provider.open_session(deps.params)
        grammars: dict[tuple[str, ...], str | None] = {}
        system = deps.system_prompt(offered) if deps.system_prompt is not None else None
        format_errors, first = 0, history.iterations
        seen: set[str] = set()  # action lines since the machine last changed (repeats are not re-run)
        planned = repeated = False
        while history.iterations - first < s.max_iterations:
            n = history.iterations + 1
            if abort.is_set():
                yield ev("aborted", during="idle", iteration=n)
                return
            # 1-2. Context + generate: stream tokens until the first valid action.
            # One plan per run: small models otherwise re-plan instead of acting. After a repeated
            # action the model has nothing new to learn, so it may only answer (else it loops).
            turn = tuple(k for k in offered if not (planned and k == "plan"))
            if repeated and "done" in turn:
                turn = ("done",)
            if turn not in grammars:
                grammars[turn] = (
                    grammar_for(list(turn), multi_command=deps.multi_command)
                    if deps.provider.supports_grammar
                    else None
                )
            grammar = grammars[turn]
            parser, gen = ActionStreamParser(list(turn)), _Generation()
            messages = build_messages(history, offered, budget_chars=s.history_budget_chars, system=system)
            async with aclosing(
                _generate(session, messages, grammar, parser, abort, deadline, gen)
            ) as tokens:
                async for text in tokens:
                    yield ev("token", text=text, iteration=n)
            if gen.stopped:  # aborted, or out of session time
                if gen.stopped == "timeout" and deps.answer_at_limit:
                    yield _limit_done(ev, deps, history, "time", n, model_answer=None)
                    return
                yield _stopped(ev, gen.stopped, n, s.session_timeout_s)
                return
            parsed = parser.finish()
            if isinstance(parsed, ParseFailure) and gen.final and gen.final.stop_reason == "length":
                parsed = replace(parsed, problems=(*parsed.problems, _CUT))
            if isinstance(parsed, ParseFailure):  # a format error: tell the model, bounded retries
                format_errors += 1
                yield _format_error(ev, history, parsed, n)
                if format_errors > s.max_format_errors:
                    yield _too_many_format_errors(ev, format_errors, parsed, n)
                    return
                continue
            format_errors = 0
            action = parsed.model_copy(update={"id": history.next_action_id()})
            said = (parser.reasoning + "\n" if parser.reasoning else "") + action_line(action)
            history.add_turn(said, action.id)
            yield ev("action", id=action.id, kind=action.action, iteration=n, reasoning=parser.reasoning,
                     said=said, action=action.model_dump(exclude_none=True))  # fmt: skip
            if action.action == "done" and (judged := gate.judge(action, n, deps.mode)) is not None:
                for kind, data in judged.events:
                    yield ev(kind, **data)
                if judged.retry is not None:  # back to the model once; to a stronger one if routed
                    history.add_observation(judged.retry, action.id)
                    await _escalate(session, "grounding")
                    continue
                if judged.ended:
                    return
            # 3-5. Policy, execute, observe: the executor yields its events, then its outcome.
            step = Step(session_id, action.id or 0, n, deps, interaction, abort, deadline)
            outcome = Outcome(None)
            line = action_line(action.model_copy(update={"id": None}))
            executor = executors[action.action]
            # An executor that deduplicates its own commands (question mode's shell) says so.
            if line in seen and action.action != "done" and not getattr(executor, "handles_repeats", False):
                # Nothing changed since this exact action ran: its result is in the history; don't loop.
                outcome = Outcome(_REPEATED, status="repeated")
            else:
                async with aclosing(executor(action, step)) as items:
                    async for item in items:
                        if isinstance(item, Outcome):
                            outcome = item
                        else:
                            yield item
            if _changes_machine(action, deps):
                seen.clear()
            seen.add(line)
            planned = planned or action.action == "plan"
            repeated = outcome.status == "repeated"
            if repeated:  # the model loops: a routed provider hands the next turn to a stronger model
                await _escalate(session, "repeat")
            if outcome.observation is not None:
                history.add_observation(outcome.observation, action.id)
                yield ev("observe", **{**outcome.data, "action": action.id, "kind": action.action,
                                       "status": outcome.status, "text": outcome.observation})  # fmt: skip
            # 6. Stop on done, abort, or the session's wall time.
            if outcome.stop == "aborted":
                yield ev("aborted", during=outcome.during, action=action.id, iteration=n)
                return
            if outcome.stop == "done":
                return
            if time.monotonic() > deadline:
                if deps.answer_at_limit:
                    yield _limit_done(ev, deps, history, "time", n, model_answer=None)
                    return
                yield _stopped(ev, "timeout", n, s.session_timeout_s)
                return
        if deps.answer_at_limit:
            # The iteration limit: one last model turn that may only answer, then the best answer so far.
            final, used = _LastWord(), history.iterations
            async with aclosing(_last_word(session, history, deps, system, abort, deadline, final)) as tokens:
                async for text in tokens:
                    yield ev("token", text=text, iteration=history.iterations + 1)
            judged = None
            if final.action is not None:
                a = final.action
                yield ev("action", id=a.id, kind="done", iteration=used + 1, final=True, reasoning="",
                         said=final.said, action=a.model_dump(exclude_none=True))  # fmt: skip
                if (judged := gate.judge(a, used + 1, deps.mode, last_word=True)) is not None:
                    for kind, data in judged.events:
                        yield ev(kind, **data)
            done = _limit_done(ev, deps, history, "iterations", used, model_answer=final.action)
            if judged is not None and judged.unverified:
                done.data.update(judged.unverified)
            yield done
            return
        yield ev("error", reason="max_iterations", iteration=history.iterations, message=(
            f"stopped after {s.max_iterations} iterations without done; "
            "continue the session or raise agent.max_iterations"))  # fmt: skip
    except Exception as e:  # the daemon must survive anything a run does
        yield _failure(ev, e, abort, session_id)
    finally:
        if session is not None:
            with contextlib.suppress(Exception):
                await session.close()


async def _escalate(session: ModelSession, reason: str) -> None:
    """Ask a routed provider for its stronger model (providers without routing ignore it)."""
    escalate = getattr(session, "escalate", None)
    if escalate is not None:
        with contextlib.suppress(Exception):
            await escalate(reason)


def _changes_machine(action: Any, deps: AgentDeps) -> bool:
    """Whether an action may have changed the machine (so repeating a read afterwards is legitimate)."""
    if action.action in ("tool_spec", "use_tool", "commit_kb"):
        return True
    if action.action != "shell":
        return False
    risks = (deps.policy.check_command(c).risk for c in action.all_commands())
    return any(str(getattr(r, "value", r)) != "read_only" for r in risks)


async def _begin(goal: str, history: History, deps: AgentDeps, ev: _EventFactory) -> list[Event]:
    """Resume the unfinished goal, or record a new goal with its context (facts, KB hits)."""
    events: list[Event] = []
    if history.interrupted_action is not None:
        aid = history.interrupted_action
        events.append(ev("observe", action=aid, status="interrupted", text=interrupted_note(aid)))
    if history.goal is not None and not history.finished and goal.strip() in ("", history.goal):
        return events
    if not goal.strip():
        return [*events, ev("error", reason="no_goal", message="no goal given and nothing to resume")]
    context = await _gather_context(goal, deps)
    history.add_goal(goal, context)
    return [*events, ev("context", goal=goal, **context)]


def _format_error(ev: _EventFactory, history: History, failure: ParseFailure, iteration: int) -> Event:
    said, text = failure.text[:2000], failure.observation()
    history.add_turn(said)
    history.add_observation(text)
    return ev("observe", action=None, status="format_error", said=said, text=text,
              problems=list(failure.problems), iteration=iteration)  # fmt: skip


def _too_many_format_errors(ev: _EventFactory, count: int, failure: ParseFailure, iteration: int) -> Event:
    return ev("error", reason="format_errors", iteration=iteration, message=(
        f"the model produced {count} answers in a row without a valid action (last problem: "
        f"{failure.message}); try a larger model or raise agent.max_format_errors"))  # fmt: skip


def _failure(ev: _EventFactory, e: Exception, abort: asyncio.Event, session_id: str) -> Event:
    if abort.is_set():  # a provider torn down by the abort is not an error
        return ev("aborted", during="generation")
    if isinstance(e, ProviderError):
        return ev("error", reason="provider", message=str(e), provider=e.provider, retryable=e.retryable)
    log.exception("agent run %s failed", session_id)
    return ev("error", reason="internal", message=f"internal error: {type(e).__name__}: {e}")


class _EventFactory:
    def __init__(self, session_id: str):
        self.session_id = session_id

    def __call__(self, kind: str, /, **data: Any) -> Event:
        if kind == "aborted":  # one readable line for renderers, next to the machine-readable ``during``
            data.setdefault("reason", f"aborted by the operator during {data.get('during', 'the run')}")
        return Event(session=self.session_id, kind=kind, data=data)  # type: ignore[arg-type]


def _stopped(ev: _EventFactory, why: str, iteration: int, limit: float) -> Event:
    if why == "aborted":
        return ev("aborted", during="generation", iteration=iteration)
    return ev("error", reason="session_timeout", iteration=iteration, message=(
        f"the session ran past its wall-time limit ({limit:.0f}s, agent.session_timeout_s); "
        "continue it or raise the limit"))  # fmt: skip


async def _gather_context(goal: str, deps: AgentDeps) -> dict[str, Any]:
    """System facts, the tools on offer and knowledge-base hits for a new goal, gathered concurrently.

    A failing or slow hook (past ``deps.context_timeout_s``) costs context, not the run; what went
    wrong is kept in the context (``facts_error`` / ``kb_error``) so the operator sees it.
    """
    jobs: dict[str, Any] = {}
    if deps.facts is not None:
        jobs["facts"] = deps.facts()
    if deps.knowledge is not None and deps.kb_limit > 0:
        jobs["kb"] = deps.knowledge.search(goal, limit=deps.kb_limit)
    context: dict[str, Any] = {}
    scratch = getattr(deps.policy, "scratch", None)
    if scratch is not None:
        context["scratch"] = str(scratch)
    tasks = {name: asyncio.ensure_future(job) for name, job in jobs.items()}
    _, pending = await asyncio.wait(tasks.values(), timeout=deps.context_timeout_s) if tasks else ((), set())
    for name, task in tasks.items():
        if task in pending:
            task.cancel()
            context[f"{name}_error"] = f"not ready within {deps.context_timeout_s:.0f}s"
            log.warning("%s hook timed out", name)
        elif (e := task.exception()) is not None:
            context[f"{name}_error"] = f"{type(e).__name__}: {e}"
            log.warning("%s hook failed: %s", name, e)
        elif name == "kb":
            context["kb"] = [h.to_dict() for h in task.result()]
            heading = getattr(deps.knowledge, "heading", None)
            if heading and context["kb"]:
                context["kb_heading"] = heading
        elif task.result():
            context["facts"] = task.result()
    if deps.tools is not None:
        try:
            if tools := [dict(t) for t in deps.tools()]:
                context["tools"] = tools
        except Exception as e:
            log.warning("tools hook failed: %s", e)
    return context


@dataclass(slots=True)
class _Generation:
    stopped: str = ""  # "" (ended or action found), "aborted", "timeout"
    final: Final | None = None


async def _generate(
    session: ModelSession,
    messages: list[Message],
    grammar: str | None,
    parser: ActionStreamParser,
    abort: asyncio.Event,
    deadline: float,
    out: _Generation,
) -> AsyncIterator[str]:
    """Stream one model turn into ``parser``, yielding the text; stop at the first valid action."""
    constraint = Constraint(grammar=grammar) if grammar else None
    stream = session.generate(messages, constraint=constraint)
    stopper = asyncio.ensure_future(abort.wait())
    try:
        while True:
            nxt = asyncio.ensure_future(anext(stream))
            done, _ = await asyncio.wait(
                {nxt, stopper},
                timeout=max(0.0, deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if nxt not in done:
                nxt.cancel()
                out.stopped = "aborted" if stopper in done else "timeout"
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, ProviderError):
                    await nxt
                await session.abort()
                return
            try:
                chunk = nxt.result()
            except StopAsyncIteration:
                return
            if isinstance(chunk, Final):
                out.final = chunk
                return
            before = len(parser.text)
            if parser.feed(chunk.text) is not None:
                # The first valid action ends the turn: show text up to its closing brace, stop the model.
                assert parser.span is not None
                if shown := chunk.text[: parser.span[1] - before]:
                    yield shown
                await session.abort()
                return
            if chunk.text:
                yield chunk.text
    finally:
        stopper.cancel()
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]


# --- Answering at a limit (modes with ``answer_at_limit``, e.g. ``fazai ask``) ----------------------

_LIMIT_NOTE = "LIMIT REACHED"
_LAST_WORD_S = 15.0  # at most this long for the final answer turn (within the session's deadline)


@dataclass(slots=True)
class _LastWord:
    action: DoneAction | None = None
    said: str = ""


async def _last_word(
    session: ModelSession,
    history: History,
    deps: AgentDeps,
    system: str | None,
    abort: asyncio.Event,
    deadline: float,
    out: _LastWord,
) -> AsyncIterator[str]:
    """One more generation, constrained to ``done``: the model's best answer from what it has seen."""
    s = deps.settings
    key = deps.limit_names[0]
    if deadline - time.monotonic() < 1.0 or abort.is_set():
        return
    history.add_observation(
        f"{_LIMIT_NOTE} ({key} = {s.max_iterations}): no more commands can run. Answer now with done, "
        "using only the results above; if something is missing, say what."
    )
    parser, gen = ActionStreamParser(["done"]), _Generation()
    grammar = grammar_for(["done"]) if deps.provider.supports_grammar else None
    messages = build_messages(history, ["done"], budget_chars=s.history_budget_chars, system=system)
    end = min(deadline, time.monotonic() + _LAST_WORD_S)
    async with aclosing(_generate(session, messages, grammar, parser, abort, end, gen)) as tokens:
        async for text in tokens:
            yield text
    parsed = parser.finish()
    if isinstance(parsed, DoneAction) and parsed.answer.strip():
        out.action = parsed.model_copy(update={"id": history.next_action_id()})
        out.said = action_line(out.action)
        history.add_turn(out.said, out.action.id)


def _best_results(history: History, limit: int = 600) -> str:
    """The latest command results, shortened: the best answer when the model gave none."""
    for e in reversed(history.entries):
        if e.role == "observation" and e.text.strip() and not e.text.startswith(_LIMIT_NOTE):
            text = e.text.strip()
            return text if len(text) <= limit else text[:limit] + " …"
    return ""


def _limit_done(
    ev: _EventFactory,
    deps: AgentDeps,
    history: History,
    which: str,
    iteration: int,
    *,
    model_answer: DoneAction | None,
) -> Event:
    """The ``done`` event of a run stopped by a limit: the best answer so far, naming the limit."""
    s = deps.settings
    if which == "iterations":
        key, value = deps.limit_names[0], f"{s.max_iterations}"
    else:
        key, value = deps.limit_names[1], f"{s.session_timeout_s:g}s"
    stopped = f"stopped by the {key} limit ({value})"
    if model_answer is not None:
        answer, status, source = model_answer.answer, model_answer.status, "model"
    else:
        results = _best_results(history)
        answer = "No final answer before the limit." + (f" Latest results:\n{results}" if results else "")
        status, source = "failed", "results"
    aid = model_answer.id if model_answer else None
    return ev("done", action=aid, answer=answer, status=status, iterations=iteration, limit=key,
              stopped_by=stopped, answer_source=source, mode=deps.mode)  # fmt: skip
