"""What the loop needs from the outside world, as small typed protocols.

The loop is a plain async function of (model, targets, knowledge, policy) — ARCHITECTURE §3. The
daemon (or the embedded CLI) builds an :class:`AgentDeps` and an :class:`Interaction` and consumes the
events; nothing here knows about HTTP, terminals or databases.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fazai.config import AgentSettings
from fazai.models.base import Provider, SessionParams
from fazai.targets.base import Target

if TYPE_CHECKING:
    from fazai.agent.executors import Executor


@runtime_checkable
class PolicyDecision(Protocol):
    """What the safety policy says about one command (``fazai.safety.Decision``)."""

    verdict: str  # "allow" | "ask" | "deny"
    risk: Any  # "read_only" | "changes_state" | "opaque" | "destructive" | "forbidden" (str or str-enum)
    reasons: Sequence[str]
    # fazai.safety.Decision also says needs_operator: opaque or security-critical, never --yes.


@runtime_checkable
class CommandPolicy(Protocol):
    """The safety policy (``fazai.safety.SafetyPolicy``)."""

    def check_command(self, command: str) -> PolicyDecision:
        """Classify a shell command and say whether it may run, needs approval, or never runs."""
        ...

    def check_risk(self, risk: str, what: str, **kw: Any) -> PolicyDecision:
        """Decide for an action whose risk is already known (a tool run, a KB write); ``critical=True``
        (with ``why``) marks a security-critical call that only an operator may approve."""
        ...


@runtime_checkable
class Interaction(Protocol):
    """The human side: the CLI prompts inline, the daemon waits for ``POST /agent/reply``."""

    async def approve(self, action_id: int, summary: str, risk: str, reasons: Sequence[str]) -> bool:
        """Ask the operator to approve an action; False = denied (non-interactive: per policy)."""
        ...

    async def answer(
        self, action_id: int, question: str, options: Sequence[str] | None, default: str | None
    ) -> str | None:
        """Ask the operator a question; None = nobody can answer (the run stops, blocked)."""
        ...


@dataclass(frozen=True, slots=True)
class KBHit:
    """One knowledge-base item offered to the model as context."""

    title: str
    snippet: str
    status: str = "unverified"  # "verified" items are listed first
    score: float = 0.0
    source: str = "kb"
    id: str = ""  # the KB item's id (the operator can `fazai kb show` it)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "snippet": self.snippet,
            "status": self.status,
            "score": self.score,
            "source": self.source,
        }


@runtime_checkable
class KnowledgeHook(Protocol):
    """Retrieval for the prompt's context block (the knowledge issue implements it)."""

    async def search(self, query: str, *, limit: int) -> list[KBHit]:
        """Items relevant to ``query``, best first."""
        ...


# Returns a short text block of system facts (OS, services, ports, disks…) for the context.
FactsHook = Callable[[], Awaitable[str]]

# Returns the tools ``use_tool`` may run (``ToolServices.catalog``: name, risk, description, args),
# listed in the goal's context so the model knows they exist.
ToolsHook = Callable[[], Sequence[Mapping[str, Any]]]


def _default_targets() -> dict[str, Target]:
    from fazai.targets.local import LocalTarget

    return {"local": LocalTarget()}


@dataclass
class AgentDeps:
    """Everything a run needs. Only ``provider`` and ``policy`` have no default."""

    provider: Provider
    policy: CommandPolicy
    settings: AgentSettings = field(default_factory=AgentSettings)
    targets: dict[str, Target] = field(default_factory=_default_targets)
    knowledge: KnowledgeHook | None = None
    facts: FactsHook | None = None
    tools: ToolsHook | None = None
    # Extra or replacement executors by action kind (research, tool_spec, use_tool, commit_kb…).
    executors: Mapping[str, Executor] = field(default_factory=dict)
    params: SessionParams | None = None
    kb_limit: int = 4
    # The facts and knowledge hooks run concurrently at each new goal; past this they are skipped.
    context_timeout_s: float = 20.0
    default_target: str = "local"
    # Modes (``fazai ask``): the mode's name (recorded on the done event), its own system prompt
    # (given the offered kinds), the shell action's parallel ``commands`` form in the grammar, and
    # what happens at a limit: False = an error event; True = a done event with the best answer so
    # far that names the limit (``limit_names``: the config keys of the iteration and time limits).
    # Verified recipes that answer a question by themselves (fazai.agent.direct), tried first.
    direct: Any = None
    mode: str = "agent"
    only_actions: tuple[str, ...] | None = None  # offer only these kinds (None: every kind with an executor)
    system_prompt: Callable[[Sequence[str]], str] | None = None
    multi_command: bool = False
    answer_at_limit: bool = False
    limit_names: tuple[str, str] = ("agent.max_iterations", "agent.session_timeout_s")
