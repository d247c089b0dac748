"""The provider protocol: every model backend (resident worker, OpenAI-compatible, Anthropic,
scripted, router) looks the same to the agent.

A provider opens sessions; a session streams generations. Each ``generate`` call receives the
whole conversation so far: stateless from the caller's side, while providers that keep a KV cache
(the worker) reuse the common prefix, so turn N+1 only evaluates what is new.

The stream yields :class:`Token` chunks and ends with exactly one :class:`Final` carrying the full
text, why it stopped, who served it and the usage/timings. Errors raise :class:`ProviderError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class SessionParams:
    """Sampling parameters fixed for the life of a session (overridable per call)."""

    temperature: float = 0.2
    top_p: float = 0.9
    repeat_penalty: float = 1.05
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Constraint:
    """Optional constrained decoding: a GBNF grammar or a JSON schema (at most one)."""

    grammar: str | None = None
    json_schema: dict[str, Any] | None = None


@dataclass(slots=True)
class Usage:
    """Counters and timings every provider reports for one generation."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    ttft_ms: float = 0.0
    tokens_per_s: float = 0.0
    prompt_ms: float = 0.0
    total_ms: float = 0.0


StopReason = Literal["stop", "length", "aborted", "error"]


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of generated text, as it arrives."""

    text: str


@dataclass(slots=True)
class Final:
    """Last item of every stream."""

    text: str
    stop_reason: StopReason
    usage: Usage
    served_by: str = ""
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


Chunk = Token | Final


class ProviderError(Exception):
    """A provider could not serve a request. ``hint`` says what the operator can do."""

    def __init__(self, message: str, *, provider: str = "", hint: str = "", retryable: bool = True):
        super().__init__(message)
        self.provider = provider
        self.hint = hint
        self.retryable = retryable

    def __str__(self) -> str:
        base = super().__str__()
        prefix = f"[{self.provider}] " if self.provider else ""
        return f"{prefix}{base}" + (f" — {self.hint}" if self.hint else "")


@runtime_checkable
class ModelSession(Protocol):
    """One conversation with its own cache on the provider side."""

    id: str

    def generate(
        self,
        messages: list[Message],
        *,
        constraint: Constraint | None = None,
        params: SessionParams | None = None,
    ) -> AsyncIterator[Chunk]:
        """Stream tokens for the conversation; the last chunk is a :class:`Final`."""
        ...

    async def abort(self) -> None:
        """Stop the generation in progress (if any); its stream ends with ``aborted``."""
        ...

    async def close(self) -> None:
        """Release the session and its cache."""
        ...


@runtime_checkable
class Provider(Protocol):
    """A model backend."""

    name: str
    supports_grammar: bool

    async def open_session(self, params: SessionParams | None = None) -> ModelSession:
        """Open a session with the given sampling parameters."""
        ...

    async def aclose(self) -> None:
        """Release connections held by the provider."""
        ...


async def collect(stream: AsyncIterator[Chunk]) -> Final:
    """Drain a stream and return its :class:`Final` (handy in tests and simple callers)."""
    final: Final | None = None
    async for chunk in stream:
        if isinstance(chunk, Final):
            final = chunk
    if final is None:
        raise ProviderError("stream ended without a final chunk")
    return final
