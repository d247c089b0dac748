"""Risk classes and the classifier's verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Risk(StrEnum):
    """How much a command can change the machine, ordered: READ_ONLY < … < FORBIDDEN.

    ``OPAQUE`` is code the classifier cannot see (unparseable input, computed command names, ``eval``,
    inline interpreter code, pipes into a shell, uploads, ``/dev/tcp``): it may do anything, so it is
    asked and never approved by ``--yes`` or ``[safety] auto_approve``."""

    READ_ONLY = "read_only"
    CHANGES_STATE = "changes_state"
    OPAQUE = "opaque"
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


_RANK = {Risk.READ_ONLY: 0, Risk.CHANGES_STATE: 1, Risk.OPAQUE: 2, Risk.DESTRUCTIVE: 3, Risk.FORBIDDEN: 4}

READ_ONLY = Risk.READ_ONLY
CHANGES_STATE = Risk.CHANGES_STATE
OPAQUE = Risk.OPAQUE
DESTRUCTIVE = Risk.DESTRUCTIVE
FORBIDDEN = Risk.FORBIDDEN


@dataclass(frozen=True)
class Finding:
    """One observation about one part of a command. ``critical``: security-critical state (firewall off,
    uid-0 account, authorized_keys, sudoers, setuid…) that only an operator's explicit approval may run."""

    risk: Risk
    reason: str
    critical: bool = False

    def but(self, reason: str, risk: Risk | None = None) -> Finding:
        """The same finding with another reason (and risk), keeping ``critical``."""
        return Finding(self.risk if risk is None else risk, reason, self.critical)


@dataclass
class Verdict:
    """The classification of a whole command line: its highest risk and why.

    ``critical`` / ``opaque``: some part touches security-critical state / cannot be seen; either way the
    policy never approves it by itself (not ``--yes``, not ``auto_approve``)."""

    risk: Risk
    reasons: list[str] = field(default_factory=list)
    critical: bool = False
    opaque: bool = False

    @property
    def needs_operator(self) -> bool:
        """True when only an operator's explicit answer may approve this command."""
        return self.critical or self.opaque or self.risk == Risk.OPAQUE


def verdict_of(findings: list[Finding]) -> Verdict:
    """Fold findings into a verdict: the highest risk, with the reasons at that level (deduplicated)."""
    if not findings:
        return Verdict(Risk.CHANGES_STATE, ["empty or unrecognised command: asking to be safe"])
    top = max(f.risk for f in findings)
    reasons: list[str] = []
    for f in findings:
        if f.risk == top and f.reason not in reasons:
            reasons.append(f.reason)
    critical = [f.reason for f in findings if f.critical]
    for r in critical:  # the operator must see why it is security-critical, whatever the top class
        if r not in reasons:
            reasons.append(r)
    return Verdict(top, reasons, critical=bool(critical), opaque=any(f.risk == Risk.OPAQUE for f in findings))
