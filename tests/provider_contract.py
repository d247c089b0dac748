"""The provider contract: what every model provider must do, whatever its backend.

Subclass :class:`ProviderContract` in a test module and give it an async ``provider`` fixture
(function scope; close it in the fixture). Class attributes adapt the checks to the backend:

- ``prompt``: the conversation used by every check;
- ``supports_json_schema``: run the JSON-schema check (the grammar check runs when the provider's
  ``supports_grammar`` is true).

Generations use temperature 0 and a seed so a backend answers the same prompt the same way twice
(the stop-string check relies on that).
"""

from __future__ import annotations

import asyncio
import json
from typing import ClassVar

import pytest

from fazai.models.base import Constraint, Final, Message, ProviderError, SessionParams, Token, collect


class ProviderContract:
    """Reusable checks; subclasses provide the ``provider`` fixture."""

    prompt: ClassVar[list[Message]] = [
        Message("system", "You are a helpful assistant."),
        Message("user", "List the days of the week."),
    ]
    supports_json_schema: ClassVar[bool] = False
    max_tokens: ClassVar[int] = 16

    def params(self, **kw: object) -> SessionParams:
        # Greedy and no repetition penalty: the contract compares two generations of one prompt. With a
        # penalty, llama.cpp samples a cached prompt differently from a fresh one (seen with the worker:
        # same prompt, temperature 0, penalty 1.05 → different first token once the prefix was cached).
        base: dict[str, object] = {
            "temperature": 0.0, "top_p": 1.0, "repeat_penalty": 1.0, "max_tokens": self.max_tokens, "seed": 7,
        }  # fmt: skip
        base.update(kw)
        return SessionParams(**base)  # type: ignore[arg-type]

    async def test_streams_tokens_then_exactly_one_final(self, provider) -> None:
        s = await provider.open_session(self.params())
        chunks = [c async for c in s.generate(self.prompt)]
        finals = [c for c in chunks if isinstance(c, Final)]
        assert len(finals) == 1 and chunks[-1] is finals[0], "exactly one Final, last"
        tokens = [c for c in chunks[:-1] if isinstance(c, Token)]
        assert len(tokens) == len(chunks) - 1 and tokens, "Tokens before the Final"
        final = finals[0]
        assert final.text == "".join(t.text for t in tokens)
        assert final.stop_reason in ("stop", "length")
        assert final.served_by
        await s.close()

    async def test_usage_is_reported(self, provider) -> None:
        s = await provider.open_session(self.params())
        final = await collect(s.generate(self.prompt))
        u = final.usage
        assert u.prompt_tokens > 0
        assert 0 < u.generated_tokens <= self.max_tokens
        assert u.ttft_ms > 0 and u.total_ms >= u.ttft_ms
        if u.generated_tokens > 1:
            assert u.tokens_per_s > 0
        assert u.cached_tokens >= 0
        await s.close()

    async def test_max_tokens_is_honoured(self, provider) -> None:
        s = await provider.open_session(self.params(max_tokens=3))
        final = await collect(s.generate(self.prompt))
        assert final.stop_reason == "length"
        assert 0 < final.usage.generated_tokens <= 3
        await s.close()

    async def test_stop_string_is_honoured(self, provider) -> None:
        s = await provider.open_session(self.params())
        first = (await collect(s.generate(self.prompt))).text
        assert len(first) >= 6, f"need some text to pick a stop string from: {first!r}"
        mid = len(first) // 2
        stop = first[mid : mid + 3]
        assert stop.strip(), f"picked a blank stop string from {first!r}"
        cut = first.index(stop)
        final = await collect(s.generate(self.prompt, params=self.params(stop=(stop,))))
        assert stop not in final.text
        assert final.text == first[:cut]
        assert final.stop_reason == "stop"
        await s.close()

    async def test_abort_ends_the_stream_with_aborted(self, provider) -> None:
        s = await provider.open_session(self.params(max_tokens=200))
        seen: list[str] = []
        final: Final | None = None
        async for chunk in s.generate(self.prompt):
            if isinstance(chunk, Token):
                seen.append(chunk.text)
                if len(seen) == 1:
                    await s.abort()
            else:
                final = chunk
        assert final is not None and final.stop_reason == "aborted"
        assert final.text == "".join(seen)
        # The session is still usable after an abort.
        again = await collect(s.generate(self.prompt, params=self.params(max_tokens=3)))
        assert again.stop_reason in ("stop", "length")
        await s.close()

    async def test_abort_from_another_task(self, provider) -> None:
        s = await provider.open_session(self.params(max_tokens=200))
        first_token = asyncio.Event()

        async def consume() -> Final:
            async for chunk in s.generate(self.prompt):
                if isinstance(chunk, Final):
                    return chunk
                first_token.set()
            raise AssertionError("no Final")

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_token.wait(), 60)
        await s.abort()
        final = await asyncio.wait_for(task, 30)
        assert final.stop_reason == "aborted"
        await s.close()

    async def test_close_session_and_provider(self, provider) -> None:
        s = await provider.open_session(self.params(max_tokens=2))
        await collect(s.generate(self.prompt))
        await s.close()
        with pytest.raises(ProviderError):
            await collect(s.generate(self.prompt))
        s2 = await provider.open_session(self.params(max_tokens=2))
        assert s2.id != s.id
        await s2.close()

    async def test_grammar_is_respected(self, provider) -> None:
        if not provider.supports_grammar:
            pytest.skip("provider has no grammar support")
        s = await provider.open_session(self.params(max_tokens=8))
        final = await collect(s.generate(self.prompt, constraint=Constraint(grammar='root ::= "yes" | "no"')))
        assert final.text in ("yes", "no")
        await s.close()

    async def test_json_schema_is_respected(self, provider) -> None:
        if not self.supports_json_schema:
            pytest.skip("provider has no JSON-schema support")
        schema = {
            "type": "object",
            "properties": {"answer": {"type": "integer"}},
            "required": ["answer"],
            "additionalProperties": False,
        }
        s = await provider.open_session(self.params(max_tokens=64))
        final = await collect(s.generate(self.prompt, constraint=Constraint(json_schema=schema)))
        obj = json.loads(final.text)
        assert set(obj) == {"answer"} and isinstance(obj["answer"], int)
        await s.close()
