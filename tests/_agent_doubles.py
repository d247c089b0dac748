"""Test doubles for what the agent loop needs from a human, plus a recorder around real providers.

``ScriptedInteraction`` is the operator: canned approvals and answers (a person cannot sit in a test).
``RecordingProvider`` wraps a real provider and remembers what each generation was given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field


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
