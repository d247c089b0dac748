"""build_provider: settings → provider (and fallback chain); clear errors for missing keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fazai.config import load_settings
from fazai.models.anthropic import AnthropicProvider
from fazai.models.base import ProviderError
from fazai.models.factory import build_provider, session_params
from fazai.models.openai_compat import OpenAICompatProvider
from fazai.models.router import RouterProvider
from fazai.models.scripted import ScriptedProvider


def _settings(tmp_path: Path, toml: str):
    f = tmp_path / "fazai.toml"
    f.write_text(toml)
    return load_settings(f, environ={})


def test_openai_with_key_from_env(tmp_path: Path) -> None:
    s = _settings(
        tmp_path,
        '[ai_provider]\nprovider = "openai"\nmodel = "qwen2.5-coder:7b"\n'
        'base_url = "http://localhost:11434/v1"\napi_key_env = "OLLAMA_KEY"\nllamacpp = true\n',
    )
    p = build_provider(s, {"OLLAMA_KEY": "k"})
    assert isinstance(p, OpenAICompatProvider)
    assert p.url == "http://localhost:11434/v1/chat/completions" and p.supports_grammar
    assert p.name == "openai:qwen2.5-coder:7b"


def test_missing_key_names_the_variable(tmp_path: Path) -> None:
    s = _settings(tmp_path, '[ai_provider]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\n')
    with pytest.raises(ProviderError, match="ANTHROPIC_API_KEY") as ei:
        build_provider(s, {})
    assert "export ANTHROPIC_API_KEY" in ei.value.hint
    assert isinstance(build_provider(s, {"ANTHROPIC_API_KEY": "k"}), AnthropicProvider)


def test_fallback_chain_builds_a_router(tmp_path: Path) -> None:
    script = tmp_path / "s.json"
    script.write_text(json.dumps(["hi"]))
    s = _settings(
        tmp_path,
        f'[ai_provider]\nprovider = "scripted"\nscript = "{script}"\nname = "local"\n'
        "first_token_timeout_s = 5\n"
        '[[ai_provider.fallback]]\nprovider = "openai"\nmodel = "gpt-4o-mini"\n'
        'api_key_env = "OPENAI_API_KEY"\n',
    )
    p = build_provider(s, {"OPENAI_API_KEY": "sk"})
    assert isinstance(p, RouterProvider)
    assert [type(x) for x in p.providers] == [ScriptedProvider, OpenAICompatProvider]
    assert p.providers[0].name == "local" and p.first_token_timeouts == [5.0, None]
    assert p.providers[1].url == "https://api.openai.com/v1/chat/completions"
    s.agent.fallback_enabled = False
    assert isinstance(build_provider(s, {"OPENAI_API_KEY": "sk"}), ScriptedProvider)


def test_scripted_needs_a_script(tmp_path: Path) -> None:
    s = _settings(tmp_path, '[ai_provider]\nprovider = "scripted"\n')
    with pytest.raises(ProviderError, match="script"):
        build_provider(s, {})


def test_worker_provider_is_imported_lazily(tmp_path: Path) -> None:
    s = _settings(tmp_path, "")
    try:
        from fazai.models.worker_client import WorkerProvider  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="worker_client"):
            build_provider(s, {})
    else:
        assert type(build_provider(s, {})).__name__ == "WorkerProvider"


def test_session_params_from_settings(tmp_path: Path) -> None:
    s = _settings(tmp_path, "[ai_provider]\ntemperature = 0.5\nmax_tokens = 99\n")
    sp = session_params(s)
    assert (sp.temperature, sp.max_tokens) == (0.5, 99)
