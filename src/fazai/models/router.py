"""An ordered fallback chain of providers (the seeds' external "arbiter").

Each turn goes to the first provider of the chain. The next one answers when the current one

- raises :class:`ProviderError` or ends with ``stop_reason == "error"`` before its first token,
- does not produce a first token within its first-token timeout, or
- was marked stuck by the caller: ``session.mark_stuck()`` sends the *next* turn to the provider
  after the one that served the last turn (e.g. a small local model loops → ask the big remote one
  once); later turns go back to the head of the chain.

Once a provider has streamed tokens the turn is its own: a failure after that raises (the caller
already showed those tokens, and mixing two models' text in one turn would be worse).
Each turn's ``Final.served_by`` names the provider that served it and ``Final.extra["router"]`` lists
who was tried and why they were passed over. Inner sessions are opened lazily, one per provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence

from fazai.models.base import (
    Chunk,
    Constraint,
    Final,
    Message,
    ModelSession,
    Provider,
    ProviderError,
    SessionParams,
    Usage,
)


class RouterProvider:
    """Fallback chain over ``providers`` (tried in order)."""

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        name: str = "router",
        first_token_timeout_s: float | Sequence[float | None] | None = None,
    ):
        if not providers:
            raise ValueError("RouterProvider needs at least one provider")
        self.providers = list(providers)
        self.name = name
        # Constraints are passed through; a provider that cannot honour one drops it and says so.
        self.supports_grammar = self.providers[0].supports_grammar
        if first_token_timeout_s is None or isinstance(first_token_timeout_s, int | float):
            self.first_token_timeouts: list[float | None] = [first_token_timeout_s] * len(self.providers)
        else:
            self.first_token_timeouts = list(first_token_timeout_s)
            if len(self.first_token_timeouts) != len(self.providers):
                raise ValueError("one first-token timeout per provider")
        self._ids = itertools.count(1)

    async def open_session(self, params: SessionParams | None = None) -> RouterSession:
        """Open a router session; inner sessions open when first needed."""
        return RouterSession(self, f"{self.name}-{next(self._ids)}", params or SessionParams())

    async def aclose(self) -> None:
        """Close every provider of the chain."""
        for p in self.providers:
            await p.aclose()


class RouterSession:
    """A session of :class:`RouterProvider`."""

    def __init__(self, router: RouterProvider, session_id: str, params: SessionParams):
        self.id = session_id
        self._r = router
        self._params = params
        self._sessions: dict[int, ModelSession] = {}
        self._active: ModelSession | None = None
        self._aborted = False
        self._stuck = False
        self.escalation_reason: str | None = None
        self.last_index: int | None = None
        self.served_by: str = ""
        self.closed = False

    def mark_stuck(self) -> None:
        """The caller judges the last answer stuck: the next turn goes to the next provider."""
        self._stuck = True

    async def escalate(self, reason: str) -> None:
        """The loop's escalation (an ungrounded answer, a repeated action): the next turn goes to the
        next, stronger provider of the chain; ``reason`` is recorded in that turn's router info."""
        self.escalation_reason = reason
        self.mark_stuck()

    async def _session(self, i: int) -> ModelSession:
        if i not in self._sessions:
            self._sessions[i] = await self._r.providers[i].open_session(self._params)
        return self._sessions[i]

    async def generate(
        self,
        messages: list[Message],
        *,
        constraint: Constraint | None = None,
        params: SessionParams | None = None,
    ) -> AsyncIterator[Chunk]:
        """Stream the turn from the first provider that answers; the last chunk is a :class:`Final`."""
        if self.closed:
            raise ProviderError("session is closed", provider=self._r.name, retryable=False)
        self._aborted = False
        n = len(self._r.providers)
        start = 0
        if self._stuck and self.last_index is not None:
            start = min(self.last_index + 1, n - 1)
        escalated: bool | str = (self.escalation_reason or True) if self._stuck else False
        self._stuck = False
        self.escalation_reason = None
        tried: list[str] = []
        errors: list[str] = []
        last_error: ProviderError | None = None
        for i in range(start, n):
            provider = self._r.providers[i]
            if self._aborted:
                break
            tried.append(provider.name)
            stream: AsyncIterator[Chunk] | None = None
            try:
                sess = await self._session(i)
                self._active = sess
                stream = sess.generate(messages, constraint=constraint, params=params)
                first = await self._first_chunk(stream, sess, self._r.first_token_timeouts[i])
                if isinstance(first, Final) and first.stop_reason == "error":
                    raise ProviderError(first.extra.get("error", "generation failed"), provider=provider.name)
            except Exception as e:
                # Any failure before the first token (a provider bug included) hands the turn on.
                pe = e if isinstance(e, ProviderError) else ProviderError(f"{type(e).__name__}: {e}")
                last_error = pe
                errors.append(f"{provider.name}: {pe}")
                await _close_stream(stream)
                continue
            # This provider owns the turn now.
            self.last_index = i
            self.served_by = provider.name
            info = {"index": i, "tried": tried, "errors": errors, "escalated": escalated}
            chunk: Chunk = first
            try:
                while True:
                    if isinstance(chunk, Final):
                        chunk.served_by = chunk.served_by or provider.name
                        chunk.extra["router"] = info
                        self.served_by = chunk.served_by
                        yield chunk
                        return
                    yield chunk
                    chunk = await anext(stream)
            except StopAsyncIteration:
                raise ProviderError("stream ended without a final chunk", provider=provider.name) from None
            finally:
                self._active = None
                await _close_stream(stream)
        if self._aborted:
            yield Final(
                "", "aborted", Usage(), served_by="", extra={"router": {"tried": tried, "errors": errors}}
            )
            return
        raise ProviderError(
            "every provider of the fallback chain failed: " + "; ".join(errors),
            provider=self._r.name,
            hint=(last_error.hint if last_error else "") or "check the providers in [ai_provider]",
        )

    async def _first_chunk(
        self, stream: AsyncIterator[Chunk], sess: ModelSession, limit_s: float | None
    ) -> Chunk:
        try:
            return await asyncio.wait_for(anext(stream), limit_s)
        except TimeoutError:
            await sess.abort()
            raise ProviderError(f"no first token within {limit_s:g} s", provider="router") from None
        except StopAsyncIteration:
            raise ProviderError("stream ended without output", provider="router") from None

    async def abort(self) -> None:
        """Abort the turn in progress, whichever provider is serving it."""
        self._aborted = True
        if self._active is not None:
            await self._active.abort()

    async def close(self) -> None:
        """Close every inner session that was opened."""
        self.closed = True
        for s in self._sessions.values():
            await s.close()
        self._sessions.clear()


async def _close_stream(stream: AsyncIterator[Chunk] | None) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
