"""Question mode's boundaries: read-only commands, a private scratch directory, read-only hints.

- ``ReadOnlyPolicy``: only what the safety policy classifies ``read_only`` runs; everything else is
  refused, never asked. The one exception is output redirected into the session's own scratch
  directory (``cmd > SCRATCH/out.txt``, ``cmd | tee SCRATCH/x``, ``mkdir -p SCRATCH/d``): the
  command without that redirection must still be read-only.
- ``ReadOnlyHints``: the knowledge base as question mode sees it — verified recipes whose every
  command is read-only and that fit the question, shown as the commands to start from (instead of a
  fixed list a small model copies whether it fits or not).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fazai.agent.deps import CommandPolicy, KBHit, KnowledgeHook

READ_ONLY = "read_only"
REFUSAL = (
    "ask mode is read-only: commands that change the system are refused (use `fazai agent` to change it)"
)


@dataclass
class _Decision:
    verdict: str
    risk: str
    reasons: list[str] = field(default_factory=list)


def risk_name(risk: Any) -> str:
    """A risk enum or string as its plain name."""
    return str(getattr(risk, "value", risk))


# A redirection target or tee argument (quoted or bare), and `mkdir [-p] DIR`.
_PATH = r"(?P<path>'[^']*'|\"[^\"]*\"|[^\s;&|<>()`$]+)"
_REDIRECT = re.compile(r"(?<![<>&\d])(?:[12]?>>?|&>>?)\s*" + _PATH)
_TEE = re.compile(r"\|\s*tee(?:\s+-a)?\s+" + _PATH + r"\s*(?=$|[;&|])")
_MKDIR = re.compile(r"^\s*mkdir(?:\s+-p)?\s+" + _PATH + r"\s*$")


def _inside(path: str, root: Path) -> bool:
    raw = path.strip("'\"")
    if not raw.startswith("/") or any(c in raw for c in "*?[]{}~"):
        return False
    norm = os.path.normpath(raw)
    return norm == str(root) or norm.startswith(str(root) + os.sep)


def strip_scratch_writes(command: str, scratch: Path) -> str | None:
    """``command`` without its writes into ``scratch``; None when it writes nowhere there.

    ``mkdir`` of a directory inside the scratch becomes ``true``. A redirection or tee to anywhere
    else is left in place, so the safety policy still judges it.
    """
    m = _MKDIR.match(command)
    if m and _inside(m["path"], scratch):
        return "true"
    found = False

    def drop(match: re.Match[str]) -> str:
        nonlocal found
        if _inside(match["path"], scratch):
            found = True
            return " "
        return match.group(0)

    out = _TEE.sub(drop, command)
    out = _REDIRECT.sub(drop, out)
    return out if found else None


class ReadOnlyPolicy:
    """Wraps the safety policy: only ``read_only`` runs; everything else is refused, never asked."""

    def __init__(self, inner: CommandPolicy, scratch: Path | None = None):
        self.inner = inner
        self.scratch = scratch

    def _only_read(self, d: Any) -> _Decision:
        risk = risk_name(d.risk)
        if d.verdict != "deny" and risk == READ_ONLY:
            return _Decision("allow", risk, list(d.reasons))
        return _Decision("deny", risk, [*d.reasons, REFUSAL] if d.verdict != "deny" else list(d.reasons))

    def check_command(self, command: str) -> _Decision:
        """Allow a read-only command (or one that only writes into the scratch dir); refuse the rest."""
        first = self._only_read(self.inner.check_command(command))
        if first.verdict == "allow" or self.scratch is None:
            return first
        rest = strip_scratch_writes(command, self.scratch)
        if rest is None:
            return first
        second = self._only_read(self.inner.check_command(rest))
        if second.verdict != "allow":
            return first
        self.scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
        return _Decision(
            "allow", READ_ONLY, [*second.reasons, f"writes only into the scratch dir {self.scratch}"]
        )

    def check_risk(self, risk: str, what: str, **kw: Any) -> _Decision:
        """Allow only what is read-only (derived for generated tools, declared for built-ins)."""
        return self._only_read(self.inner.check_risk(risk, what, **kw))


_PLACEHOLDER = re.compile(r"<[^<>\s][^<>]*>")


def snippet_commands(snippet: str) -> list[str]:
    """The commands of a recipe snippet (one per line; comments and blank lines dropped)."""
    return [ln.strip() for ln in snippet.splitlines() if ln.strip() and not ln.strip().startswith("#")]


class ReadOnlyHints:
    """Question mode's knowledge: verified recipes that fit the question and only read."""

    heading = (
        "## Commands that fit this question (verified knowledge-base recipes, all read-only; "
        "replace <...> with real values, or use other read-only commands)"
    )

    def __init__(self, inner: KnowledgeHook, policy: CommandPolicy, *, min_score: float):
        self.inner = inner
        self.policy = policy
        self.min_score = min_score

    def read_only(self, snippet: str) -> bool:
        """True when the safety policy classifies every command of ``snippet`` read-only."""
        cmds = snippet_commands(snippet)
        if not cmds:
            return False
        for cmd in cmds:
            d = self.policy.check_command(_PLACEHOLDER.sub("x", cmd))
            if d.verdict == "deny" or risk_name(d.risk) != READ_ONLY:
                return False
        return True

    async def search(self, query: str, *, limit: int) -> list[KBHit]:
        """Up to ``limit`` verified, read-only, relevant recipes for ``query``."""
        if limit <= 0:
            return []
        hits = await self.inner.search(query, limit=limit * 2)
        keep = [
            h
            for h in hits
            if h.status == "verified" and h.score >= self.min_score and self.read_only(h.snippet)
        ]
        return keep[:limit]
