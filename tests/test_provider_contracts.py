"""The provider contract applied to scripted, anthropic (local fake), router and openai (real llama.cpp)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fake_apis import API_KEY, anthropic_app, closed_port, serve
from fazai.models.anthropic import AnthropicProvider
from fazai.models.base import Message, collect
from fazai.models.openai_compat import OpenAICompatProvider
from fazai.models.router import RouterProvider
from fazai.models.scripted import ScriptedProvider
from provider_contract import ProviderContract

TEXT = "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday and Sunday are the seven days."


def scripted(name: str = "scripted", delay: float = 0.002) -> ScriptedProvider:
    return ScriptedProvider([TEXT] * 50, name=name, chunk_size=3, token_delay_s=delay)


class TestScriptedContract(ProviderContract):
    @pytest.fixture
    async def provider(self) -> AsyncIterator[ScriptedProvider]:
        p = scripted()
        yield p
        await p.aclose()


@pytest.fixture(scope="module")
def anthropic_url() -> Iterator[str]:
    with serve(anthropic_app()) as url:
        yield url


class TestAnthropicContract(ProviderContract):
    @pytest.fixture
    async def provider(self, anthropic_url: str) -> AsyncIterator[AnthropicProvider]:
        p = AnthropicProvider("claude-test", API_KEY, base_url=anthropic_url, timeout_s=10)
        yield p
        await p.aclose()


class TestRouterFallbackContract(ProviderContract):
    """The head of the chain refuses connections: every turn is served by the fallback."""

    @pytest.fixture
    async def provider(self) -> AsyncIterator[RouterProvider]:
        dead = OpenAICompatProvider(f"http://127.0.0.1:{closed_port()}/v1", "m", name="dead", timeout_s=2)
        p = RouterProvider([dead, scripted("fallback")])
        yield p
        await p.aclose()


class TestRouterStuckContract(ProviderContract):
    """Two healthy providers; the contract runs on the head, stuck escalation in test_router.py."""

    @pytest.fixture
    async def provider(self) -> AsyncIterator[RouterProvider]:
        p = RouterProvider([scripted("local"), scripted("arbiter")], first_token_timeout_s=10)
        yield p
        await p.aclose()


# --- the real thing: llama.cpp's server hosted in-process by xllamacpp -----------------------


@pytest.fixture(scope="module")
def llama_server(gemma_gguf: Path) -> Iterator[tuple[str, str]]:
    """One llama.cpp server per module on a loopback port; yields (base_url, api_key)."""
    import xllamacpp as xl

    key = secrets.token_hex(8)
    params = xl.CommonParams()
    params.model.path = str(gemma_gguf)
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    # No busy-polling: the test machine is shared, spinning threads only steal CPU from the work.
    params.cpuparams.poll = 0
    params.cpuparams_batch.poll = 0
    params.n_ctx = 2048
    params.n_parallel = 2
    params.cache_ram_mib = 64
    params.warmup = False
    params.api_keys = [key]
    server = xl.Server(params)
    base = server.listening_address
    base = base if base.startswith("http") else f"http://{base}"
    yield f"{base}/v1", key
    del server


@pytest.mark.slow
class TestOpenAIOnLlamaCppContract(ProviderContract):
    supports_json_schema = True
    max_tokens = 8  # a real model on 2 shared cores: keep every generation short

    @pytest.fixture
    async def provider(self, llama_server: tuple[str, str]) -> AsyncIterator[OpenAICompatProvider]:
        url, key = llama_server
        p = OpenAICompatProvider(url, "gemma3-270m", api_key=key, llamacpp=True, timeout_s=60)
        yield p
        await p.aclose()

    async def test_second_turn_reports_cached_prompt_tokens(self, provider: OpenAICompatProvider) -> None:
        # llama.cpp keeps the slot's KV cache: turn 2 extends turn 1, so most of its prompt is cached.
        s = await provider.open_session(self.params(max_tokens=4))
        turn1 = [*self.prompt]
        f1 = await collect(s.generate(turn1))
        turn2 = [*turn1, Message("assistant", f1.text), Message("user", "And the months?")]
        f2 = await collect(s.generate(turn2))
        assert f2.usage.prompt_tokens > f1.usage.prompt_tokens
        assert f2.usage.cached_tokens >= f1.usage.prompt_tokens // 2
        await s.close()
