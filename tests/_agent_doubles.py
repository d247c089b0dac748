"""Test doubles for the agent loop's collaborators that another slice owns or that need a human.

``RulePolicy`` follows the API of ``fazai.agent.safety.SafetyPolicy`` (check_command → Decision with
verdict/risk/reasons; check_risk) with a few explicit rules, so loop tests do not depend on the real
classifier's judgement. ``ScriptedInteraction`` is the operator: canned approvals and answers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Decision:
    verdict: str  # "allow" | "ask" | "deny"
    risk: str
    reasons: tuple[str, ...] = ()


@dataclass
class RulePolicy:
    """``deny`` and ``ask`` are regexes; anything else is allowed as read-only."""

    deny: Sequence[str] = (r"rm\s+-rf\s+/(\s|$)", r"\bmkfs\b")
    ask: Sequence[str] = (r"^touch\b", r"^systemctl (restart|stop)\b")
    checked: list[str] = field(default_factory=list)

    def check_command(self, command: str) -> Decision:
        self.checked.append(command)
        if any(re.search(p, command) for p in self.deny):
            return Decision("deny", "forbidden", ("matches a forbidden pattern",))
        if any(re.search(p, command) for p in self.ask):
            return Decision("ask", "changes_state", ("changes the system",))
        return Decision("allow", "read_only")

    def check_risk(self, risk: str, what: str) -> Decision:
        return Decision("allow" if risk == "read_only" else "ask", risk)


@dataclass
class ScriptedInteraction:
    """The operator: approves per ``approve``, answers per ``answers`` (None = nobody can answer)."""

    approve_result: bool = True
    answers: list[str | None] = field(default_factory=list)
    block: bool = False  # wait forever (to test abort during an approval or a question)
    approvals: list[tuple[int, str, str]] = field(default_factory=list)
    questions: list[tuple[int, str]] = field(default_factory=list)

    async def approve(self, action_id: int, summary: str, risk: str, reasons: Sequence[str]) -> bool:
        self.approvals.append((action_id, summary, risk))
        if self.block:
            await asyncio.Event().wait()
        return self.approve_result

    async def answer(
        self, action_id: int, question: str, options: Sequence[str] | None, default: str | None
    ) -> str | None:
        self.questions.append((action_id, question))
        if self.block:
            await asyncio.Event().wait()
        return self.answers.pop(0) if self.answers else default


class RecordingProvider:
    """Wraps a real provider and records what each generation was given (messages, constraint)."""

    def __init__(self, inner, *, supports_grammar: bool | None = None):
        self.inner = inner
        self.name = inner.name
        self.supports_grammar = inner.supports_grammar if supports_grammar is None else supports_grammar
        self.calls: list[dict] = []
        self.sessions_closed = 0

    async def open_session(self, params=None):
        session = await self.inner.open_session(params)
        outer = self

        class _Session:
            id = session.id

            def generate(self, messages, *, constraint=None, params=None):
                outer.calls.append({"messages": list(messages), "constraint": constraint})
                return session.generate(messages, constraint=constraint, params=params)

            async def abort(self):
                await session.abort()

            async def close(self):
                outer.sessions_closed += 1
                await session.close()

        return _Session()

    async def aclose(self):
        await self.inner.aclose()
