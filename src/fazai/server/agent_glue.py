"""Builds what the agent loop needs (provider, safety policy, limits) from the settings.

The only place where the daemon / embedded runner meets ``fazai.agent``: the runner calls an
:class:`AgentLoop` like any other loop function.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fazai.agent.deps import AgentDeps, Interaction
from fazai.agent.loop import run_agent
from fazai.config import Settings
from fazai.models.base import Provider, ProviderError, SessionParams
from fazai.protocol import Event


def build_provider(settings: Settings) -> Provider:
    """The configured provider (``fazai.models.factory`` when present; the scripted one always)."""
    try:
        from fazai.models.factory import build_provider as factory
    except ImportError:
        factory = None
    if factory is not None:
        return factory(settings)
    ap = settings.ai_provider
    if ap.provider == "scripted":
        from fazai.models.scripted import ScriptedProvider

        if ap.script is None:
            raise ProviderError(
                "the scripted provider needs a script", provider="scripted", hint="set [ai_provider] script"
            )
        return ScriptedProvider.from_file(ap.script)
    raise ProviderError(
        f"provider {ap.provider!r} is not available in this build",
        provider=ap.provider,
        hint="install the full FazAI package",
        retryable=False,
    )


class _AskEverything:
    """Used only when ``fazai.agent.safety`` is missing: every command needs a human's approval."""

    class _D:
        def __init__(self, what: str):
            self.verdict = "ask"
            self.risk = "unclassified"
            self.reasons = [f"the safety policy is not installed; {what} needs approval"]

    def check_command(self, command: str) -> Any:
        return self._D("every command")

    def check_risk(self, risk: str, what: str) -> Any:
        return self._D(what)


def build_policy(settings: Settings, *, assume_yes: bool = False) -> Any:
    """The safety policy from ``[safety]``; ``assume_yes`` (``--yes``) lets it allow what it covers."""
    try:
        from fazai.agent.safety import SafetyPolicy
    except ImportError:
        return _AskEverything()
    return SafetyPolicy(settings.safety, assume_yes=assume_yes)


def build_executors(settings: Settings) -> dict[str, Any]:
    """Executors beyond the loop's built-in ones (research, tool_spec, use_tool) when installed."""
    try:
        from fazai.agent.tool_executors import ToolServices, tool_executors
        from fazai.tools.registry import ToolRegistry
    except ImportError:
        return {}
    services = ToolServices(
        registry=ToolRegistry(settings.paths.tools_dir), research=settings.research, tools=settings.tools
    )
    return dict(tool_executors(services))


class AgentLoop:
    """Callable with the runner's loop signature; owns the provider(s) across runs."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._providers: dict[str | None, Provider] = {}
        self._executors: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self._ask_cache: Any = None  # question mode's command cache, shared by the runs of this process

    def _provider(self, model: str | None) -> Provider:
        key = model if model and model != self.settings.ai_provider.model else None
        if key not in self._providers:
            s = self.settings
            if key is not None:
                s = s.model_copy(update={"ai_provider": s.ai_provider.model_copy(update={"model": key})})
            self._providers[key] = build_provider(s)
        return self._providers[key]

    def deps(self, options: Any) -> AgentDeps:
        """The loop's dependencies for one run (limits overridden by the run's options)."""
        s = self.settings
        agent = s.agent
        if getattr(options, "max_iterations", None):
            agent = agent.model_copy(update={"max_iterations": options.max_iterations})
        if self._executors is None:
            self._executors = build_executors(s)
        ap = s.ai_provider
        params = SessionParams(
            temperature=ap.temperature,
            top_p=ap.top_p,
            repeat_penalty=ap.repeat_penalty,
            max_tokens=ap.max_tokens,
        )
        deps = AgentDeps(
            provider=self._provider(getattr(options, "model", None)),
            policy=build_policy(s, assume_yes=bool(getattr(options, "yes", False))),
            settings=agent,
            params=params,
            executors=self._executors,
        )
        if getattr(options, "mode", "agent") == "ask":
            from fazai.agent.ask import CommandCache, ask_deps

            if self._ask_cache is None:
                self._ask_cache = CommandCache(s.ask.cache_ttl_s)
            ask = s.ask
            if getattr(options, "max_iterations", None):
                ask = ask.model_copy(update={"max_iterations": options.max_iterations})
            # --yes never widens question mode: it stays read-only.
            deps = ask_deps(deps, ask, self._ask_cache)
        return deps

    async def __call__(
        self,
        goal: str,
        *,
        session_id: str,
        interaction: Interaction,
        abort: asyncio.Event,
        prior_events: Sequence[Event] = (),
        options: Any = None,
    ) -> AsyncIterator[Event]:
        try:
            deps = self.deps(options)
        except ProviderError as e:
            yield Event(session=session_id, kind="error", data={"reason": "provider", "message": str(e)})
            return
        async for ev in run_agent(
            goal,
            session_id=session_id,
            deps=deps,
            interaction=interaction,
            abort=abort,
            prior_events=prior_events,
        ):
            yield ev

    async def aclose(self) -> None:
        """Close the providers."""
        for p in self._providers.values():
            await p.aclose()
        self._providers.clear()
