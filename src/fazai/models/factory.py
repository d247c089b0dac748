"""Build the configured provider from ``[ai_provider]`` (and its ``[[ai_provider.fallback]]`` chain)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from fazai.config import ProviderSpec, Settings
from fazai.models.base import Provider, ProviderError, SessionParams

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


# ``vault:NAME`` -> value; given by the caller (models does not know where the vault is).
SecretResolver = Callable[[str], str]


def _api_key(
    spec: ProviderSpec,
    environ: Mapping[str, str],
    *,
    default_env: str | None = None,
    secrets: SecretResolver | None = None,
) -> str | None:
    if spec.api_key:
        if secrets is None:
            raise ProviderError(
                f"the {spec.provider} provider's api_key is a vault reference, "
                "but no vault is available here",
                provider=spec.provider,
                retryable=False,
            )
        try:
            return secrets(spec.api_key)
        except Exception as e:  # the vault's message names the reference, never the value
            raise ProviderError(
                f"the {spec.provider} provider ({spec.model}) api_key {spec.api_key}: {e}",
                provider=spec.provider,
                hint="add it with `fazai secrets set NAME` (value from stdin)",
                retryable=False,
            ) from e
    var = spec.api_key_env or default_env
    if var is None:
        return None
    key = environ.get(var, "").strip()
    if not key:
        raise ProviderError(
            f"the {spec.provider} provider ({spec.model}) needs an API key in the environment "
            f"variable {var}, which is not set",
            provider=spec.provider,
            hint=f"export {var}=… (or change api_key_env in [ai_provider])",
            retryable=False,
        )
    return key


def build_one(
    spec: ProviderSpec,
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    secrets: SecretResolver | None = None,
) -> Provider:
    """One provider from one spec (no fallback chain)."""
    env = os.environ if environ is None else environ
    if spec.provider == "worker":
        # Imported lazily: the worker client pulls in the socket protocol only when it is used.
        from fazai.models.worker_client import WorkerProvider

        if spec.model == settings.worker.model or spec is settings.ai_provider:
            return WorkerProvider.from_settings(
                settings
            )  # [worker] model is what an autostarted worker loads
        # Another local model in a routing chain: its own resident worker, socket and log.
        rt = settings.paths.runtime_dir
        return WorkerProvider(
            rt / f"worker-{spec.model}.sock",
            worker=settings.worker,
            model=spec.model,
            log_path=rt / f"worker-{spec.model}.log",
            worker_args=list(spec.worker_args),
        )
    if spec.provider == "openai":
        from fazai.models.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(
            spec.base_url or OPENAI_DEFAULT_URL,
            spec.model,
            api_key=_api_key(spec, env, secrets=secrets),
            api_key_env=spec.api_key_env,
            name=spec.name,
            timeout_s=spec.timeout_s,
            llamacpp=spec.llamacpp,
            json_schema=spec.json_schema,
            headers=spec.headers,
        )
    if spec.provider == "anthropic":
        from fazai.models.anthropic import AnthropicProvider

        key = _api_key(spec, env, default_env="ANTHROPIC_API_KEY", secrets=secrets)
        assert key is not None
        return AnthropicProvider(
            spec.model,
            key,
            base_url=spec.base_url,
            api_key_env=spec.api_key_env or "ANTHROPIC_API_KEY",
            name=spec.name,
            timeout_s=spec.timeout_s,
            version=spec.anthropic_version,
        )
    if spec.provider == "scripted":
        from fazai.models.scripted import ScriptedProvider

        if spec.script is None:
            raise ProviderError(
                "the scripted provider needs a script file",
                provider="scripted",
                hint="set script = '/path/to/outputs.json' in [ai_provider]",
                retryable=False,
            )
        return ScriptedProvider.from_file(spec.script, name=spec.name or "scripted")
    raise ProviderError(f"unknown provider {spec.provider!r}", retryable=False)  # pragma: no cover


def build_provider(
    settings: Settings, environ: Mapping[str, str] | None = None, secrets: SecretResolver | None = None
) -> Provider:
    """The provider the agent uses: ``[ai_provider]``, wrapped in a router when fallbacks are set."""
    ai = settings.ai_provider
    primary = build_one(ai, settings, environ, secrets)
    if not ai.fallback or not settings.agent.fallback_enabled:
        return primary
    from fazai.models.router import RouterProvider

    specs: list[ProviderSpec] = [ai, *ai.fallback]
    chain = [primary, *(build_one(s, settings, environ, secrets) for s in ai.fallback)]
    return RouterProvider(chain, first_token_timeout_s=[s.first_token_timeout_s for s in specs])


def session_params(settings: Settings) -> SessionParams:
    """The default sampling parameters from ``[ai_provider]``."""
    ai = settings.ai_provider
    return SessionParams(
        temperature=ai.temperature, top_p=ai.top_p, repeat_penalty=ai.repeat_penalty, max_tokens=ai.max_tokens
    )
