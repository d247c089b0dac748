"""The loop on a real model: llama.cpp (xllamacpp) behind the OpenAI-compatible provider, with the grammar.

Every command the model proposes is sent for approval and denied, so nothing a tiny model invents
ever runs here; what is checked is the plumbing: real streaming through the OpenAI-compatible client,
the chat template, the grammar keeping the answer parseable, generation stopped at the action.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from _agent_doubles import RecordingProvider, ScriptedInteraction
from fazai.agent.deps import AgentDeps
from fazai.agent.loop import run_agent
from fazai.config import AgentSettings
from fazai.models.base import SessionParams
from fazai.models.openai_compat import OpenAICompatProvider


@dataclass(frozen=True)
class _Ask:
    verdict: str = "ask"
    risk: str = "changes_state"
    reasons: tuple[str, ...] = ("test: every command needs approval",)


class AskEverything:
    def check_command(self, command: str) -> _Ask:
        return _Ask()

    def check_risk(self, risk: str, what: str) -> _Ask:
        return _Ask()


@pytest.fixture(scope="module")
def llama_url(gemma_gguf: Path) -> Iterator[tuple[str, str]]:
    import xllamacpp as xl

    key = secrets.token_hex(8)
    p = xl.CommonParams()
    p.model.path = str(gemma_gguf)
    p.cpuparams.n_threads = 2
    p.cpuparams_batch.n_threads = 2
    p.cpuparams.poll = 0
    p.cpuparams_batch.poll = 0
    p.n_ctx = 4096
    p.cache_ram_mib = 64
    p.warmup = False
    p.api_keys = [key]
    server = xl.Server(p)
    base = server.listening_address
    yield (base if base.startswith("http") else f"http://{base}") + "/v1", key
    del server


@pytest.mark.slow
async def test_real_model_turns_are_valid_actions_under_the_grammar(llama_url):
    url, key = llama_url
    inner = OpenAICompatProvider(url, "gemma3-270m", api_key=key, llamacpp=True, timeout_s=300)
    provider = RecordingProvider(inner)
    deps = AgentDeps(
        provider=provider,
        policy=AskEverything(),
        settings=AgentSettings(max_iterations=1, max_format_errors=0),
        params=SessionParams(temperature=0.0, max_tokens=64, seed=3),
    )
    inter = ScriptedInteraction(approve_result=False)
    events = []
    try:
        async for ev in run_agent(
            "how long has this machine been up?",
            session_id="real",
            deps=deps,
            interaction=inter,
            abort=asyncio.Event(),
        ):
            events.append(ev)
    finally:
        await inner.aclose()
    kinds = [e.kind for e in events]
    assert "error" not in kinds or events[-1].data["reason"] == "max_iterations", events[-1].data
    assert not [e for e in events if e.kind == "observe" and e.data["status"] == "format_error"]
    assert "token" in kinds and "action" in kinds
    assert provider.calls[0]["constraint"].grammar.startswith("root ::=")
    assert "exec_end" not in kinds  # every command was denied: nothing ran
    # One turn, one action: the run stops at the iteration limit (or the model said done).
    assert len(provider.calls) == 1 and len([e for e in events if e.kind == "action"]) == 1
