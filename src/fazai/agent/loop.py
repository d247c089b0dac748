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
from dataclasses import dataclass
from typing import Any

from fazai.agent.deps import AgentDeps, Interaction
from fazai.agent.executors import DEFAULT_EXECUTORS, Outcome, Step
from fazai.agent.grammar import grammar_for
from fazai.agent.history import history_from_events, interrupted_note
from fazai.agent.prompt import build_messages, offered_actions
from fazai.models.base import Constraint, Final, Message, ModelSession, ProviderError
from fazai.protocol import ACTION_KINDS, ActionStreamParser, Event, ParseFailure, action_line

log = logging.getLogger(__name__)


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
    the session's history.
    """
    s = deps.settings
    executors = {**DEFAULT_EXECUTORS, **deps.executors}
    offered = offered_actions(executors, ACTION_KINDS)
    history = history_from_events(prior_events)
    ev = _EventFactory(session_id)
    deadline = time.monotonic() + s.session_timeout_s
    session: ModelSession | None = None
    try:
        resuming = history.goal is not None and not history.finished and goal in ("", history.goal)
        if history.interrupted_action is not None:
            aid = history.interrupted_action
            yield ev("observe", action=aid, status="interrupted", text=interrupted_note(aid))
        if not resuming:
            if not goal.strip():
                yield ev("error", reason="no_goal", message="no goal given and nothing to resume")
                return
            context = await _gather_context(goal, deps)
            history.add_goal(goal, context)
            yield ev("context", goal=goal, **context)
        session = await deps.provider.open_session(deps.params)
        grammar = grammar_for(offered) if deps.provider.supports_grammar else None
        format_errors, first_iteration = 0, history.iterations
        while history.iterations - first_iteration < s.max_iterations:
            iteration = history.iterations + 1
            if abort.is_set():
                yield ev("aborted", during="idle", iteration=iteration)
                return
            parser = ActionStreamParser(offered)
            messages = build_messages(history, offered, budget_chars=s.history_budget_chars)
            gen = _Generation()
            async for text in _generate(session, messages, grammar, parser, abort, deadline, gen):
                yield ev("token", text=text, iteration=iteration)
            if gen.stopped == "aborted":
                yield ev("aborted", during="generation", iteration=iteration)
                return
            if gen.stopped == "timeout":
                yield _session_timeout(ev, s.session_timeout_s)
                return
            parsed = parser.finish()
            if isinstance(parsed, ParseFailure):
                format_errors += 1
                said = parsed.text[:2000]
                history.add_turn(said)
                history.add_observation(parsed.observation())
                yield ev(
                    "observe",
                    action=None,
                    status="format_error",
                    said=said,
                    text=parsed.observation(),
                    problems=list(parsed.problems),
                    iteration=iteration,
                )
                if format_errors > s.max_format_errors:
                    yield ev(
                        "error",
                        reason="format_errors",
                        iteration=iteration,
                        message=(
                            f"the model produced {format_errors} answers in a row without a valid action "
                            f"(last problem: {parsed.message}); "
                            "try a larger model or raise agent.max_format_errors"
                        ),
                    )
                    return
                continue
            format_errors = 0
            action = parsed.model_copy(update={"id": history.next_action_id()})
            said = (parser.reasoning + "\n" if parser.reasoning else "") + action_line(action)
            history.add_turn(said, action.id)
            yield ev(
                "action",
                id=action.id,
                kind=action.action,
                iteration=iteration,
                reasoning=parser.reasoning,
                said=said,
                action=action.model_dump(exclude_none=True),
            )
            step = Step(session_id, action.id or 0, iteration, deps, interaction, abort, deadline)
            outcome = Outcome(None)
            async for item in executors[action.action](action, step):
                if isinstance(item, Outcome):
                    outcome = item
                else:
                    yield item
            if outcome.observation is not None:
                history.add_observation(outcome.observation, action.id)
                yield ev(
                    "observe",
                    action=action.id,
                    kind=action.action,
                    status=outcome.status,
                    text=outcome.observation,
                    **outcome.data,
                )
            if outcome.stop == "aborted":
                yield ev("aborted", during=outcome.during, action=action.id, iteration=iteration)
                return
            if outcome.stop == "done":
                return
            if time.monotonic() > deadline:
                yield _session_timeout(ev, s.session_timeout_s)
                return
        yield ev(
            "error",
            reason="max_iterations",
            iteration=history.iterations,
            message=(
                f"stopped after {s.max_iterations} iterations without done; continue the session "
                "or raise agent.max_iterations"
            ),
        )
    except ProviderError as e:
        yield ev("error", reason="provider", message=str(e), provider=e.provider, retryable=e.retryable)
    except Exception as e:  # the daemon must survive anything a run does
        log.exception("agent run %s failed", session_id)
        yield ev("error", reason="internal", message=f"internal error: {type(e).__name__}: {e}")
    finally:
        if session is not None:
            with contextlib.suppress(Exception):
                await session.close()


class _EventFactory:
    def __init__(self, session_id: str):
        self.session_id = session_id

    def __call__(self, kind: str, /, **data: Any) -> Event:
        return Event(session=self.session_id, kind=kind, data=data)  # type: ignore[arg-type]


def _session_timeout(ev: _EventFactory, limit: float) -> Event:
    return ev(
        "error",
        reason="session_timeout",
        message=(
            f"the session ran past its wall-time limit ({limit:.0f}s, agent.session_timeout_s); "
            "continue it or raise the limit"
        ),
    )


async def _gather_context(goal: str, deps: AgentDeps) -> dict[str, Any]:
    """System facts and knowledge-base hits for a new goal; a failing hook costs context, not the run."""
    context: dict[str, Any] = {}
    if deps.facts is not None:
        try:
            context["facts"] = await deps.facts()
        except Exception as e:
            log.warning("facts hook failed: %s", e)
    if deps.knowledge is not None and deps.kb_limit > 0:
        try:
            hits = await deps.knowledge.search(goal, limit=deps.kb_limit)
            context["kb"] = [h.to_dict() for h in hits]
        except Exception as e:
            log.warning("knowledge hook failed: %s", e)
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
