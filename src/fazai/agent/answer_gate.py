"""The gate a final answer passes before the session may end ``success``.

A ``done`` with status success is checked against the session's evidence
(:func:`fazai.answers.ground`). An answer with values the evidence does not hold, or claims it
contradicts, goes back to the model once with the exact problems; if it fails again the session ends
``unverified`` — never ``success``. Every verdict is a ``grounding`` event in the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fazai.answers import Evidence, Verdict, ground
from fazai.protocol import DoneAction

UNVERIFIED = "unverified"


@dataclass
class Judgement:
    """What the loop does with a judged answer: emit ``events``, then retry, end, or go on to ``done``."""

    events: list[tuple[str, dict[str, Any]]]
    retry: str | None = None  # the observation that sends the answer back to the model
    ended: bool = False  # the run ended here (``unverified``)
    unverified: dict[str, Any] | None = None  # the done fields of an unverified end


@dataclass
class AnswerGate:
    """Grounding state of one run: the evidence so far and the retries used."""

    enabled: bool = True
    retries: int = 1
    evidence: Evidence = field(default_factory=Evidence)
    attempts: int = 0

    def see(self, kind: str, data: dict[str, Any]) -> None:
        """Every event of the session, in order (tokens are skipped)."""
        if kind != "token":
            self.evidence.feed(kind, data)

    def check(self, answer: str, status: str) -> Verdict | None:
        """The verdict of a success answer; None when the gate does not apply (off, or not success)."""
        if not self.enabled or status != "success":
            return None
        return ground(answer, self.evidence)

    def judge(
        self, action: DoneAction, iteration: int, mode: str, *, last_word: bool = False
    ) -> Judgement | None:
        """Judge a ``done`` action; None when it passes unchecked (gate off, or not a success)."""
        verdict = self.check(action.answer, action.status)
        if verdict is None:
            return None
        retry = not verdict.ok and not last_word and self.attempts < self.retries
        if retry:
            self.attempts += 1
        outcome = "accepted" if verdict.ok else "retry" if retry else UNVERIFIED
        events: list[tuple[str, dict[str, Any]]] = [
            ("grounding", {"action": action.id, "iteration": iteration, "attempt": self.attempts,
                           "outcome": outcome, **verdict.to_dict()}),
        ]  # fmt: skip
        if verdict.ok:
            return Judgement(events)
        if retry:
            text = verdict.feedback()
            events.append(
                ("observe", {"action": action.id, "kind": "done", "status": "ungrounded", "text": text})
            )
            return Judgement(events, retry=text)
        fields = unverified_data(action.answer, verdict)
        if last_word:
            return Judgement(events, unverified=fields)
        extra = {"mode": mode, "answer_source": "model"} if mode != "agent" else {}
        events.append(("done", {"action": action.id, "iterations": iteration, **fields, **extra}))
        return Judgement(events, ended=True, unverified=fields)


def unverified_data(answer: str, verdict: Verdict) -> dict[str, Any]:
    """The fields of a ``done`` event that ends a run ``unverified``."""
    return {
        "answer": answer,
        "status": UNVERIFIED,
        "claimed_status": "success",
        "problems": verdict.problems(),
        "reason": "the answer is not grounded in what the commands printed: " + "; ".join(verdict.problems()),
    }
