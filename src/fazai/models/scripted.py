"""Deterministic replay of canned outputs: for tests and demos of the plumbing.

Each ``generate`` call takes the next output of the script, in order, shared by all sessions of the
provider, and streams it in small chunks (so parsers see tokens split anywhere). An entry may be an
error (``{"error": "message"}`` in a script file) to exercise fallbacks. Running out of script is a
:class:`ProviderError`, never a silent empty answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from fazai.models.base import (
    Chunk,
    Constraint,
    Final,
    Message,
    ProviderError,
    SessionParams,
    Token,
    Usage,
)


@dataclass(frozen=True, slots=True)
class ScriptedError:
    """A scripted failure: the turn raises :class:`ProviderError` with this message."""

    message: str


ScriptEntry = str | ScriptedError


def _chunks(text: str, size: int) -> Iterable[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


def _count_tokens(text: str) -> int:
    # A rough whitespace/punctuation count: only used for usage reporting.
    return max(1, len(text) // 4) if text else 0


class ScriptedSession:
    """A session of :class:`ScriptedProvider`."""

    def __init__(self, provider: ScriptedProvider, session_id: str, params: SessionParams):
        self.id = session_id
        self._provider = provider
        self._params = params
        self._abort = asyncio.Event()
        self.closed = False

    async def generate(
        self,
        messages: list[Message],
        *,
        constraint: Constraint | None = None,
        params: SessionParams | None = None,
    ) -> AsyncIterator[Chunk]:
        if self.closed:
            raise ProviderError("session is closed", provider=self._provider.name, retryable=False)
        entry = self._provider.next_entry()
        if isinstance(entry, ScriptedError):
            raise ProviderError(entry.message, provider=self._provider.name)
        p = params or self._params
        self._abort.clear()
        start = time.perf_counter()
        first: float | None = None
        emitted: list[str] = []
        reason = "stop"
        text = entry
        for stop in p.stop:
            if stop and stop in text:
                text = text[: text.index(stop)]
        budget_chars = p.max_tokens * 4
        if len(text) > budget_chars:
            text, reason = text[:budget_chars], "length"
        for piece in _chunks(text, self._provider.chunk_size):
            if self._abort.is_set():
                reason = "aborted"
                break
            if self._provider.token_delay_s:
                await asyncio.sleep(self._provider.token_delay_s)
            else:
                await asyncio.sleep(0)
            if self._abort.is_set():
                reason = "aborted"
                break
            if first is None:
                first = time.perf_counter()
            emitted.append(piece)
            yield Token(piece)
        elapsed = time.perf_counter() - start
        out = "".join(emitted)
        prompt_chars = sum(len(m.content) for m in messages)
        gen = _count_tokens(out)
        yield Final(
            text=out,
            stop_reason=reason,  # type: ignore[arg-type]
            usage=Usage(
                prompt_tokens=max(1, prompt_chars // 4),
                generated_tokens=gen,
                ttft_ms=((first or time.perf_counter()) - start) * 1000,
                tokens_per_s=gen / elapsed if elapsed > 0 else 0.0,
                total_ms=elapsed * 1000,
            ),
            served_by=self._provider.name,
            model="scripted",
        )

    async def abort(self) -> None:
        self._abort.set()

    async def close(self) -> None:
        self.closed = True


class ScriptedProvider:
    """Replays a fixed list of outputs, one per generation, in order."""

    supports_grammar = False

    def __init__(
        self,
        outputs: Iterable[ScriptEntry],
        *,
        name: str = "scripted",
        chunk_size: int = 3,
        token_delay_s: float = 0.0,
    ):
        self.name = name
        self.chunk_size = max(1, chunk_size)
        self.token_delay_s = token_delay_s
        self._outputs = list(outputs)
        self._pos = 0
        self._ids = itertools.count(1)

    @classmethod
    def from_file(cls, path: Path, **kwargs: object) -> ScriptedProvider:
        """Load a script: a JSON list whose items are strings or ``{"error": "…"}``."""
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ProviderError(
                f"cannot load script {path}: {e}", provider="scripted", hint="give a JSON list of strings"
            ) from e
        if not isinstance(raw, list):
            raise ProviderError(f"script {path} must be a JSON list", provider="scripted", retryable=False)
        entries: list[ScriptEntry] = []
        for item in raw:
            if isinstance(item, str):
                entries.append(item)
            elif isinstance(item, dict) and "error" in item:
                entries.append(ScriptedError(str(item["error"])))
            else:
                raise ProviderError(
                    f"script {path}: entries must be strings or {{'error': …}}, got {item!r}",
                    provider="scripted",
                    retryable=False,
                )
        return cls(entries, **kwargs)  # type: ignore[arg-type]

    @property
    def remaining(self) -> int:
        """How many outputs are left."""
        return len(self._outputs) - self._pos

    def next_entry(self) -> ScriptEntry:
        """Take the next output of the script."""
        if self._pos >= len(self._outputs):
            raise ProviderError(
                f"script exhausted after {len(self._outputs)} outputs",
                provider=self.name,
                hint="add more outputs to the script",
                retryable=False,
            )
        entry = self._outputs[self._pos]
        self._pos += 1
        return entry

    async def open_session(self, params: SessionParams | None = None) -> ScriptedSession:
        return ScriptedSession(self, f"{self.name}-{next(self._ids)}", params or SessionParams())

    async def aclose(self) -> None:
        return None
