"""The loop's side of answering from recipes: run each matched recipe as an action of the session.

Kept out of ``loop.py`` so the loop stays one screen: this turns :mod:`fazai.agent.direct`'s matches
into the same events a model's shell action makes (``action`` marked ``source: "recipe"``, the
executor's ``exec_*`` events, ``observe``), records them in the history the model would continue from,
and ends the run with a grounded ``done`` when every part was answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from fazai.agent.answer_gate import AnswerGate
from fazai.agent.deps import AgentDeps
from fazai.agent.direct import DirectResult, Match, answer_directly, said_for
from fazai.agent.executors import DEFAULT_EXECUTORS, Outcome, Step
from fazai.agent.history import History
from fazai.protocol import DoneAction, Event, ShellAction

_FAILED = {"refused", "forbidden", "denied", "error", "aborted", "timeout"}


class DirectRun:
    """One attempt to answer a new goal from recipes; ``ended`` when the run is over."""

    def __init__(
        self, deps: AgentDeps, history: History, gate: AnswerGate, ev: Callable[..., Event], step: Step
    ):
        self.deps, self.history, self.gate, self.ev, self.step = deps, history, gate, ev, step
        self.ended = False

    async def run(self) -> AsyncIterator[Event]:
        """Yield the recipes' events, then the final ``grounding`` and ``done`` when answered."""
        result = DirectResult()
        goal = self.history.goal or ""
        async with aclosing(answer_directly(goal, self.deps.direct, self._run_action, result)) as events:
            async for e in events:
                yield e
        if self.deps.direct.misses:
            yield self.ev("observe", action=None, kind="recipes", status="skipped",
                          text="recipes not used: " + "; ".join(
                              f"{m['recipe']} ({m['why']})" for m in self.deps.direct.misses),
                          misses=self.deps.direct.misses)  # fmt: skip
        if result.answer is None:
            return
        n = self.history.iterations + 1
        done = DoneAction(answer=result.answer, status="success", id=self.history.next_action_id())
        judged = self.gate.judge(done, n, self.deps.mode, last_word=True)
        if judged is not None:
            for kind, data in judged.events:
                yield self.ev(kind, **data)
            if judged.unverified:  # a recipe's reading the evidence does not bear out: the model goes on
                return
        self.history.add_turn(f"(answered from verified recipes: {', '.join(result.recipes)})", done.id)
        self.ended = True
        yield self.ev("done", action=done.id, answer=result.answer, status="success", iterations=n,
                      answer_source="recipe", recipes=result.recipes, mode=self.deps.mode)  # fmt: skip

    async def _run_action(
        self, action: ShellAction, match: Match, output: dict[str, Any]
    ) -> AsyncIterator[Event]:
        """One recipe command as an action of the session, through the mode's shell executor."""
        aid = self.history.next_action_id()
        action = action.model_copy(update={"id": aid})
        said = said_for(action, match)
        self.history.add_turn(said, aid)
        n = self.history.iterations
        yield self.ev("action", id=aid, kind="shell", iteration=n, reasoning="", said=said,
                      action=action.model_dump(exclude_none=True), source="recipe", recipe=match.item_id,
                      similarity=match.similarity, part=match.part)  # fmt: skip
        executor = self.deps.executors.get("shell") or DEFAULT_EXECUTORS["shell"]
        step = replace(self.step, action_id=aid, iteration=n)
        outcome, stdout = Outcome(None), []
        async with aclosing(executor(action, step)) as items:
            async for item in items:
                if isinstance(item, Outcome):
                    outcome = item
                    continue
                if item.kind == "exec_log" and item.data.get("stream") == "stdout":
                    stdout.append(str(item.data.get("text") or ""))
                yield item
        if not stdout:  # question mode's cache: the output is in the result
            stdout = [str(r.get("output") or "") for r in outcome.data.get("results") or []]
        output["stdout"] = "".join(stdout)
        output["failed"] = outcome.status in _FAILED
        if outcome.observation is not None:
            self.history.add_observation(outcome.observation, aid)
            data = {**outcome.data, "action": aid, "kind": "shell", "status": outcome.status}
            yield self.ev("observe", **data, text=outcome.observation)
