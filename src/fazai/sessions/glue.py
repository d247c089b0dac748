"""Builds what the agent loop needs (provider, safety policy, limits) from the settings.

The only place where the daemon / embedded runner meets ``fazai.agent``: the runner calls an
:class:`AgentLoop` like any other loop function.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fazai.agent.deps import AgentDeps, Interaction
from fazai.agent.direct import DirectAnswers
from fazai.agent.learning import KBContext, MachineFacts, RecipeChecks, commit_kb_executor
from fazai.agent.loop import run_agent
from fazai.agent.tool_executors import ToolServices, tool_executors
from fazai.config import Settings
from fazai.knowledge.access import KBAccess
from fazai.models.base import Provider, ProviderError
from fazai.models.factory import build_one, build_provider, session_params
from fazai.protocol import Event
from fazai.safety import SafetyPolicy
from fazai.safety.secrets import GuardedPolicy, secret_files
from fazai.tools.builtin import load_builtins, make_registry

log = logging.getLogger(__name__)


def build_policy(settings: Settings, *, assume_yes: bool = False) -> SafetyPolicy:
    """The safety policy from ``[safety]``; ``assume_yes`` (``--yes``) lets it allow what it covers.

    Commands that would read FazAI's own secret files (token, keys, session store) are forbidden.
    """
    return GuardedPolicy(settings.safety, protected=secret_files(settings), assume_yes=assume_yes)


def build_tool_services(settings: Settings, *, kb_search: Any = None) -> ToolServices:
    """The services of the research/tool_spec/use_tool executors.

    ``kb_search`` (``(query, k) -> hits``) is the research action's knowledge-base backend.
    """
    # tool_spec's last attempt goes to the first fallback provider (the seeds' stronger "arbiter").
    ai = settings.ai_provider
    use_fallback = bool(ai.fallback) and settings.agent.fallback_enabled
    fallback = build_one(ai.fallback[0], settings) if use_fallback else None
    # Built-in tools (e.g. OPNsense, when a firewall is registered) + stable and generated ones.
    return ToolServices(
        registry=make_registry(settings),
        research=settings.research,
        tools=settings.tools,
        kb_search=kb_search,
        fallback=fallback,
    )


class AgentLoop:
    """Callable with the runner's loop signature; owns the provider(s) across runs."""

    def __init__(self, settings: Settings, *, kb_access: KBAccess | None = None):
        self.settings = settings
        self._providers: dict[str | None, Provider] = {}
        self._executors: dict[str, Any] | None = None
        self._services: Any = None
        self._lock = asyncio.Lock()
        # The knowledge base, shared by every run of this process (opened per operation, see
        # fazai.knowledge.access: the embedded store stays free for `fazai kb` between operations).
        self.kb_access = kb_access
        if self.kb_access is None and settings.kb.enabled:
            self.kb_access = KBAccess(settings)
        self._ask_cache: Any = None  # question mode's command cache, shared by the runs of this process

    def _provider(self, model: str | None) -> Provider:
        key = model if model and model != self.settings.ai_provider.model else None
        if key not in self._providers:
            s = self.settings
            if key is not None:
                s = s.model_copy(update={"ai_provider": s.ai_provider.model_copy(update={"model": key})})
            from fazai.vault import resolver

            self._providers[key] = build_provider(s, secrets=resolver(self.settings))
        return self._providers[key]

    def deps(self, options: Any, *, session_id: str | None = None) -> AgentDeps:
        """The loop's dependencies for one run (limits overridden by the run's options)."""
        s = self.settings
        agent = s.agent
        if getattr(options, "max_iterations", None):
            agent = agent.model_copy(update={"max_iterations": options.max_iterations})
        if self._executors is None:
            kb_search = KBContext(self.kb_access).research if self.kb_access is not None else None
            self._services = build_tool_services(s, kb_search=kb_search)
            self._executors = dict(tool_executors(self._services))
        else:
            # Built-ins follow what is registered now: `fazai opnsense add` needs no daemon restart.
            self._services.registry.replace_builtins(load_builtins(s))
        # A run on an inventory node (--node): its target is the only one, facts come from there.
        node_target = getattr(options, "target", None)
        facts = (
            MachineFacts(
                node_target, budget_s=s.agent.facts_budget_s, target_name=getattr(node_target, "name", None)
            )
            if s.agent.facts_budget_s > 0
            else None
        )
        policy = build_policy(s, assume_yes=bool(getattr(options, "yes", False)))
        knowledge = (
            KBContext(
                self.kb_access,
                facts=facts,
                token_budget=s.kb.token_budget,
                checks=RecipeChecks(policy, node_target),
            )
            if self.kb_access is not None
            else None
        )
        executors = dict(self._executors)
        if node_target is not None:
            # Tools run on this machine, not on the node: a run on a node offers none of them.
            for kind in ("tool_spec", "use_tool"):
                executors.pop(kind, None)
        if knowledge is not None:
            executors["commit_kb"] = commit_kb_executor(knowledge)
        params = session_params(s)
        direct = None
        if knowledge is not None and s.kb.answer_recipes:
            direct = DirectAnswers(
                knowledge.recipes,
                threshold=s.kb.answer_threshold,
                policy=policy,
                questions_only=getattr(options, "mode", "agent") != "ask",
            )
        deps = AgentDeps(
            provider=self._provider(getattr(options, "model", None)),
            policy=policy,
            settings=agent,
            params=params,
            executors=executors,
            tools=self._services.catalog if self._services is not None and node_target is None else None,
            knowledge=knowledge,
            facts=facts,
            kb_limit=s.kb.top_k,
            direct=direct,
        )
        if node_target is not None:
            deps.targets = {node_target.name: node_target}
            deps.default_target = node_target.name
        if getattr(options, "mode", "agent") == "ask":
            from fazai.agent.ask import CommandCache, ask_deps

            if self._ask_cache is None:
                self._ask_cache = CommandCache(s.ask.cache_ttl_s)
            ask = s.ask
            if getattr(options, "max_iterations", None):
                ask = ask.model_copy(update={"max_iterations": options.max_iterations})
            # --yes never widens question mode: it stays read-only.
            scratch = s.paths.state_dir / "scratch" / session_id if ask.scratch and session_id else None
            deps = ask_deps(deps, ask, self._ask_cache, scratch=scratch)
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
            deps = self.deps(options, session_id=session_id)
        except ProviderError as e:
            yield Event(session=session_id, kind="error", data={"reason": "provider", "message": str(e)})
            return
        if isinstance(deps.knowledge, KBContext):
            deps.knowledge.session_id = session_id
        seen: list[Event] = list(prior_events)
        async for ev in run_agent(
            goal,
            session_id=session_id,
            deps=deps,
            interaction=interaction,
            abort=abort,
            prior_events=prior_events,
        ):
            if ev.kind == "done" and ev.data.get("status") == "success":
                # The learning loop: what worked becomes an unverified item, before the run's last event.
                learned = await self._learn(deps, session_id, [*seen, ev])
                if learned is not None:
                    yield learned
            if ev.kind != "token":
                seen.append(ev)
            yield ev

    async def _learn(self, deps: AgentDeps, session_id: str, events: list[Event]) -> Event | None:
        """Draft an unverified item from this goal's working commands; a ``kb_commit`` event or None."""
        if not self.settings.agent.learn or not isinstance(deps.knowledge, KBContext):
            return None
        start = max((i for i, e in enumerate(events) if e.kind == "context" and "goal" in e.data), default=-1)
        if start < 0:
            return None
        goal_events = events[start:]
        if any(e.kind == "kb_commit" for e in goal_events):
            return None  # the model saved what it learned itself
        answer = next((str(e.data.get("answer") or "") for e in reversed(events) if e.kind == "done"), None)
        try:
            item = await asyncio.wait_for(
                deps.knowledge.draft(str(events[start].data["goal"]), goal_events, answer),
                timeout=deps.context_timeout_s,
            )
        except Exception as e:  # learning is a bonus: never fail a successful run over it
            log.warning("drafting a knowledge item failed: %s", e)
            return None
        if item is None:
            return None
        return Event(
            session=session_id,
            kind="kb_commit",
            data={"id": item.id, "title": item.title, "status": item.status, "source": item.source,
                  "tags": item.tags, "drafted": True},
        )  # fmt: skip

    async def aclose(self) -> None:
        """Close the providers."""
        for p in self._providers.values():
            await p.aclose()
        self._providers.clear()
        if self.kb_access is not None:
            await asyncio.to_thread(self.kb_access.close)
