"""OpenAI-compatible and Anthropic providers: request shape, errors with hints, stream failures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fake_apis import API_KEY, anthropic_app, closed_port, openai_errors_app, reply_words, serve
from fazai.models.anthropic import AnthropicProvider
from fazai.models.base import Constraint, Message, ProviderError, SessionParams, collect
from fazai.models.openai_compat import OpenAICompatProvider

MSG = [Message("user", "ping")]


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[str]:
    with serve(openai_errors_app()) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def anthropic_url() -> Iterator[str]:
    with serve(anthropic_app()) as url:
        yield url


async def _fail(provider, **kw) -> ProviderError:
    s = await provider.open_session(SessionParams(max_tokens=4))
    with pytest.raises(ProviderError) as ei:
        await collect(s.generate(MSG, **kw))
    await provider.aclose()
    return ei.value


async def test_openai_connection_refused_names_the_url() -> None:
    p = OpenAICompatProvider(f"http://127.0.0.1:{closed_port()}/v1", "m", name="local")
    e = await _fail(p)
    assert "cannot connect" in str(e) and "base_url" in e.hint and e.provider == "local"


@pytest.mark.parametrize(
    ("model", "status", "hint", "retryable"),
    [
        ("missing", "404", "exists on this endpoint", False),
        ("ratelimited", "429", "rate limited", True),
        ("broken", "500", "retry later", True),
    ],
)
async def test_openai_http_errors_have_hints(openai_fake: str, model, status, hint, retryable) -> None:
    e = await _fail(OpenAICompatProvider(openai_fake, model, api_key=API_KEY))
    assert f"HTTP {status}" in str(e) and hint in e.hint and e.retryable is retryable


async def test_openai_bad_key_names_the_variable(openai_fake: str) -> None:
    p = OpenAICompatProvider(openai_fake, "x", api_key="wrong", api_key_env="MY_KEY")
    e = await _fail(p)
    assert "HTTP 401" in str(e) and "MY_KEY" in e.hint and not e.retryable


async def test_openai_timeout(openai_fake: str) -> None:
    e = await _fail(OpenAICompatProvider(openai_fake, "slow", api_key=API_KEY, timeout_s=0.3))
    assert "timed out" in str(e)


async def test_openai_error_inside_the_stream(openai_fake: str) -> None:
    e = await _fail(OpenAICompatProvider(openai_fake, "stream-error", api_key=API_KEY))
    assert "upstream provider failed" in str(e)


async def test_openai_accepts_a_non_streamed_answer(openai_fake: str) -> None:
    p = OpenAICompatProvider(openai_fake, "nostream", api_key=API_KEY)
    s = await p.open_session()
    chunks = [c async for c in s.generate(MSG)]
    assert [type(c).__name__ for c in chunks] == ["Token", "Final"]
    final = chunks[-1]
    assert (final.text, final.stop_reason, final.model, final.usage.prompt_tokens) == (
        "whole",
        "length",
        "nostream-1",
        3,
    )
    await p.aclose()


def test_openai_body_shapes_constraints() -> None:
    params = SessionParams(max_tokens=9, stop=("\n",), seed=3)
    schema = {"type": "object"}
    plain = OpenAICompatProvider("http://x/v1", "gpt")
    body, ignored = plain.build_body(MSG, params, Constraint(grammar="root ::= x"))
    assert "grammar" not in body and "repeat_penalty" not in body and ignored == "grammar"
    assert body["stream_options"] == {"include_usage": True} and body["stop"] == ["\n"] and body["seed"] == 3
    body, ignored = plain.build_body(MSG, params, Constraint(json_schema=schema))
    assert body["response_format"]["json_schema"]["schema"] == schema and ignored is None
    llama = OpenAICompatProvider("http://x/v1", "g", llamacpp=True)
    body, ignored = llama.build_body(MSG, params, Constraint(grammar="root ::= x"))
    assert body["grammar"] == "root ::= x" and "repeat_penalty" in body and ignored is None
    nojs = OpenAICompatProvider("http://x/v1", "g", json_schema=False)
    assert nojs.build_body(MSG, params, Constraint(json_schema=schema))[1] == "json_schema"


async def test_anthropic_streams_the_fake_models_answer(anthropic_url: str) -> None:
    p = AnthropicProvider("claude-test", API_KEY, base_url=anthropic_url)
    s = await p.open_session(SessionParams(max_tokens=5))
    conv = [Message("system", "be brief"), Message("user", "hello"), Message("user", "there")]
    final = await collect(s.generate(conv, constraint=Constraint(grammar="root ::= x")))
    # Consecutive user messages were merged into one turn (the API wants alternation).
    assert final.text == "".join(reply_words("hello\n\nthere", 40)[:5])
    assert final.stop_reason == "length" and final.usage.generated_tokens == 5
    assert final.usage.prompt_tokens == 4 and final.model == "claude-test"
    assert final.extra["constraint_ignored"] == "grammar"
    await p.aclose()


@pytest.mark.parametrize(
    ("model", "key", "match", "hint"),
    [
        ("claude-test", "wrong", "authentication_error", "ANTHROPIC_API_KEY"),
        ("claude-overloaded", API_KEY, "HTTP 529", "overloaded"),
        ("claude-missing", API_KEY, "not_found_error", "exists"),
        ("claude-midstream-error", API_KEY, "overloaded_error", "retry"),
    ],
)
async def test_anthropic_errors(anthropic_url: str, model, key, match, hint) -> None:
    p = AnthropicProvider(model, key, base_url=anthropic_url, api_key_env="ANTHROPIC_API_KEY")
    e = await _fail(p)
    assert match in str(e) and hint in e.hint


async def test_anthropic_connection_refused() -> None:
    p = AnthropicProvider("claude-test", API_KEY, base_url=f"http://127.0.0.1:{closed_port()}")
    assert "cannot connect" in str(await _fail(p))
