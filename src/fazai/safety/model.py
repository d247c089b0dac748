"""Risk classes and the classifier's verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Risk(StrEnum):
    """How much a command can change the machine, ordered: READ_ONLY < … < FORBIDDEN."""

    READ_ONLY = "read_only"
    CHANGES_STATE = "changes_state"
    DESTRUCTIVE = "destructive"
    FORBIDDEN = "forbidden"

    @property
    def rank(self) -> int:
        return _RANK[self]

    # str's own comparisons are alphabetical; risk comparisons must follow the rank.
    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Risk):
            return NotImplemented
        return self.rank >= other.rank

    def __hash__(self) -> int:
        return hash(self.value)


_RANK = {Risk.READ_ONLY: 0, Risk.CHANGES_STATE: 1, Risk.DESTRUCTIVE: 2, Risk.FORBIDDEN: 3}

READ_ONLY = Risk.READ_ONLY
CHANGES_STATE = Risk.CHANGES_STATE
DESTRUCTIVE = Risk.DESTRUCTIVE
FORBIDDEN = Risk.FORBIDDEN


@dataclass(frozen=True)
class Finding:
    """One observation about one part of a command."""

    risk: Risk
    reason: str


@dataclass
class Verdict:
    """The classification of a whole command line: its highest risk and why."""

    risk: Risk
    reasons: list[str] = field(default_factory=list)


def verdict_of(findings: list[Finding]) -> Verdict:
    """Fold findings into a verdict: the highest risk, with the reasons at that level (deduplicated)."""
    if not findings:
        return Verdict(Risk.CHANGES_STATE, ["empty or unrecognised command: asking to be safe"])
    top = max(f.risk for f in findings)
    reasons: list[str] = []
    for f in findings:
        if f.risk == top and f.reason not in reasons:
            reasons.append(f.reason)
    return Verdict(top, reasons)
