"""What makes FazAI learn: context at session start, ``commit_kb``, and drafts from successful runs.

* :class:`MachineFacts` — the facts hook: system facts collected once per run (collectors in
  parallel, within a time budget), shared with the KB hook for the distro filter.
* :class:`KBContext` — the knowledge hook: KB top-k for the goal, filtered by the machine's platform,
  verified first, cut to ``[kb] token_budget``; also the research action's KB backend and the KB
  writes (``commit_kb``, drafts). The KB facade is synchronous: every call goes through
  ``asyncio.to_thread``.
* :func:`commit_kb_executor` — the ``commit_kb`` action: embed and upsert, emit ``kb_commit``.
* :func:`commands_that_worked` / :meth:`KBContext.draft` — the learning loop: when a run ends
  ``done``/``success``, its shell commands that exited 0 become an ``unverified`` item.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from fazai.agent.deps import KBHit
from fazai.agent.executors import Executor, Outcome, Step
from fazai.agent.prompt import kb_hit_line
from fazai.protocol import CommitKBAction, Event

if TYPE_CHECKING:
    from fazai.facts import Facts
    from fazai.knowledge.access import KBAccess
    from fazai.knowledge.kb import KBItem

log = logging.getLogger(__name__)


def estimate_tokens(text: str) -> int:
    """Conservative token estimate (~3.5 characters per token), the KB's own rule."""
    return max(1, int(len(text) / 3.5) + 1)


class MachineFacts:
    """System facts of the run's machine, collected at most once per run (memoized task)."""

    def __init__(self, target: Any = None, *, budget_s: float = 3.0, target_name: str | None = None):
        self.target = target
        self.budget_s = budget_s
        self.target_name = target_name
        self._task: asyncio.Task[Facts | None] | None = None

    async def _collect(self) -> Facts | None:
        from fazai.facts import collect_facts

        try:
            return await collect_facts(self.target, self.budget_s, target_name=self.target_name)
        except Exception as e:  # facts are context, never a reason to fail a run
            log.warning("facts collection failed: %s", e)
            return None

    async def get(self) -> Facts | None:
        """The facts (collected on first use; later calls share the same collection)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._collect())
        return await asyncio.shield(self._task)

    async def __call__(self) -> str:
        """The :data:`~fazai.agent.deps.FactsHook`: facts as a text block for the prompt."""
        facts = await self.get()
        return facts.as_prompt() if facts is not None else ""


def platforms_of(facts: Facts | None) -> list[str]:
    """KB platform keys for a machine: its distro (``debian-12``), distro name and OS family.

    Items checked on another distro of the same family still match (``linux``); items for another OS
    (``opnsense``) do not.
    """
    if facts is None or not facts.os:
        return []
    name = str(facts.os.get("id") or "").lower()
    family = name if name in ("opnsense", "freebsd") else "linux"
    return list(dict.fromkeys(p for p in (facts.distro, name, family) if p))


def fit_budget(hits: Sequence[KBHit], token_budget: int) -> list[KBHit]:
    """Verified first (then score), keeping whole hits while the prompt lines fit ``token_budget``.

    When not even the first fits, its snippet is cut and the cut is stated.
    """
    if token_budget <= 0:
        return []
    ordered = sorted(hits, key=lambda h: (h.status != "verified", -h.score))
    kept: list[KBHit] = []
    used = 0
    for h in ordered:
        cost = estimate_tokens(kb_hit_line(h.to_dict()))
        if used + cost <= token_budget:
            kept.append(h)
            used += cost
        elif not kept:
            snippet = h.snippet
            while snippet:
                snippet = snippet[: int(len(snippet) * 0.8)]
                cut = KBHit(h.title, snippet + "\n… (truncated)", h.status, h.score, h.source, h.id)
                if estimate_tokens(kb_hit_line(cut.to_dict())) <= token_budget:
                    kept.append(cut)
                    break
            break
        else:
            break
    return kept


class KBContext:
    """The knowledge hook over the real KB, for one run (``facts`` gives the platform filter)."""

    def __init__(
        self,
        access: KBAccess,
        *,
        facts: MachineFacts | None = None,
        token_budget: int = 600,
        checks: RecipeChecks | None = None,
    ):
        self.access = access
        self.facts = facts
        self.token_budget = token_budget
        self.checks = checks
        self.session_id: str | None = None  # the run's session (a recipe is checked on a later one)

    async def _platforms(self) -> list[str]:
        return platforms_of(await self.facts.get()) if self.facts is not None else []

    async def search(self, query: str, *, limit: int) -> list[KBHit]:
        """The goal's context: top ``limit`` items for this machine, verified first, within the budget."""
        from fazai.knowledge.kb import KBFilters

        filters = KBFilters(platforms=await self._platforms())

        def work() -> list[Any]:
            with self.access.session() as kb:
                return kb.search(query, filters, k=limit)

        found = await asyncio.to_thread(work)
        if self.checks is not None:
            found = [await self._confirm(h) for h in found]
        hits = [
            KBHit(h.item.title, h.item.snippet, h.item.status, round(h.similarity, 4), "kb", h.item.id)
            for h in found
        ]
        return fit_budget(hits, self.token_budget)

    async def _confirm(self, hit: Any) -> Any:
        """An unverified recipe with a check, saved by another session: run the check; a pass verifies it."""
        item = hit.item
        if item.status != "unverified" or not item.check or item.origin_session in (None, self.session_id):
            return hit
        assert self.checks is not None
        ok, how = await self.checks.passes(item.check)
        if not ok:
            return hit

        def work() -> Any:
            with self.access.session() as kb:
                return kb.verify(item.id, f"check `{item.check}` passed in session {self.session_id}: {how}")

        try:
            hit.item = await asyncio.to_thread(work)
        except Exception as e:  # verification is a bonus: never fail a run over it
            log.warning("verifying %s failed: %s", item.id, e)
        return hit

    async def recipes(self, query: str, k: int) -> list[tuple[Any, float]]:
        """Answerable recipes for ``query`` with their cosine similarity (verified operator items only)."""
        from fazai.knowledge.kb import KBFilters
        from fazai.knowledge.recipe_index import index_for

        filters = KBFilters(tags=["answer"], status="verified", platforms=await self._platforms())

        def work() -> list[tuple[Any, float]]:
            with self.access.session() as kb:
                candidates = [h.item for h in kb.search(query, filters, k=max(k, 8))]
                return index_for(kb.embedder).score(query, candidates)[:k]

        return await asyncio.to_thread(work)

    async def research(self, query: str, k: int) -> list[Any]:
        """The research action's KB backend (no platform filter: the model asked explicitly)."""

        def work() -> list[Any]:
            with self.access.session() as kb:
                return kb.search(query, k=k)

        return await asyncio.to_thread(work)

    async def commit(self, item: KBItem) -> KBItem:
        """Embed and upsert ``item``."""

        def work() -> KBItem:
            with self.access.session() as kb:
                return kb.commit(item)

        return await asyncio.to_thread(work)

    async def draft(self, goal: str, events: Sequence[Event], answer: str | None) -> KBItem | None:
        """Draft and store an unverified item from a successful run; None when nothing is new.

        The id is derived from the content, so the same lesson learned twice is one item, and an item
        an operator already verified is never downgraded.
        """
        from fazai.knowledge.kb import draft_from_session

        cmds = commands_that_worked(events)
        facts = await self.facts.get() if self.facts is not None else None
        plats = platforms_of(facts)
        item = draft_from_session(
            goal,
            cmds,
            answer=answer,
            os_name=plats[-1] if plats else "linux",
            distro=facts.distro if facts is not None else None,
        )
        if item is None:
            return None
        digest = hashlib.sha256((item.title + "\0" + item.snippet).encode()).hexdigest()[:12]
        item = item.model_copy(update={"id": f"learned.{digest}"})

        def work() -> KBItem | None:
            with self.access.session() as kb:
                if kb.get(item.id) is not None:
                    return None
                return kb.commit(item)

        return await asyncio.to_thread(work)


class RecipeChecks:
    """Runs a model recipe's ``check`` on a later session: read-only by the policy, or not at all."""

    def __init__(self, policy: Any, target: Any = None, *, timeout_s: float = 10.0):
        self.policy = policy
        self.target = target
        self.timeout_s = timeout_s

    async def passes(self, command: str) -> tuple[bool, str]:
        """(passed, what happened): exit code 0 with some output passes."""
        from fazai.facts.collect import LocalRunner, _run_on

        d = self.policy.check_command(command)
        if d.verdict != "allow" or str(getattr(d.risk, "value", d.risk)) != "read_only":
            return False, "the check is not a read-only command"
        try:
            res = await _run_on(self.target or LocalRunner(), command, self.timeout_s)
        except Exception as e:
            return False, f"{type(e).__name__}: {e}"
        out = res.stdout.decode() if isinstance(res.stdout, bytes) else res.stdout
        return res.exit_code == 0 and bool(out.strip()), f"exit {res.exit_code}, {len(out)} bytes of output"


def commands_that_worked(events: Sequence[Event]) -> list[str]:
    """Shell commands of these events whose ``exec_end`` says exit code 0, in order."""
    commands: dict[Any, str] = {}
    worked: list[str] = []
    for ev in events:
        d = ev.data
        if ev.kind == "action" and d.get("kind") == "shell" and d.get("source") != "recipe":  # known already
            cmd = (d.get("action") or {}).get("command")
            if cmd:
                commands[d.get("id")] = str(cmd)
        elif ev.kind == "exec_end" and d.get("exit_code") == 0 and not d.get("cancelled"):
            cmd = commands.pop(d.get("action"), None)
            if cmd:
                worked.append(cmd)
    return worked


def _tags(tags: Sequence[str]) -> list[str]:
    return [t for t in (re.sub(r"\s+", "-", t.strip().lower()) for t in tags) if t][:12]


def _read_only_check(check: str | None, step: Step) -> str | None:
    """The model's check command, kept only when the policy classifies it read-only."""
    if not check or not check.strip():
        return None
    d = step.deps.policy.check_command(check)
    return check.strip() if str(getattr(d.risk, "value", d.risk)) == "read_only" else None


def commit_kb_executor(kb: KBContext) -> Executor:
    """The ``commit_kb`` executor: embed and upsert the model's item (status from the action, source
    local, checked on this machine's distro), then a ``kb_commit`` event."""

    async def execute_commit_kb(action: CommitKBAction, step: Step) -> AsyncIterator[Event | Outcome]:
        from pydantic import ValidationError

        from fazai.knowledge.kb import KBItem

        facts = await kb.facts.get() if kb.facts is not None else None
        plats = platforms_of(facts)
        try:
            item = KBItem(
                title=action.title.strip(),
                snippet=action.snippet.strip(),
                tags=_tags(action.tags),
                os=plats[-1] if plats else "linux",
                distros=[facts.distro] if facts is not None and facts.distro else [],
                # Whatever the model claims: verified only when its check passes on a later run, or an
                # operator says so (`fazai kb verify`).
                status="unverified",
                source="local",
                notes=f"saved by the agent in session {step.session_id}",
                check=_read_only_check(action.check, step),
                origin_session=step.session_id,
            )
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            text = f"commit_kb rejected: {where}: {first['msg']}; fix the field and retry"
            yield Outcome(text, status="error")
            return
        try:
            stored = await kb.commit(item)
        except Exception as e:  # a KB problem is the model's observation, not a crash
            log.warning("commit_kb failed: %s", e)
            yield Outcome(f"commit_kb failed: {e}", status="error")
            return
        yield step.event(
            "kb_commit",
            action=step.action_id,
            id=stored.id,
            title=stored.title,
            status=stored.status,
            source=stored.source,
            tags=stored.tags,
            drafted=False,
            claimed_status=action.status,
            check=stored.check,
        )
        yield Outcome(
            f"saved to the knowledge base as {stored.id} ({stored.status}; "
            + (
                "verified when its check passes on a later run)"
                if stored.check
                else "an operator verifies it)"
            ),
            data={"id": stored.id, "kb_status": stored.status},
        )

    return execute_commit_kb
