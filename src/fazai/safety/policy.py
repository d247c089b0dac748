"""The safety policy: turn a risk into allow / ask / deny using ``[safety]`` settings and ``--yes``.

``--yes`` answers approvals for ``changes_state`` only. ``destructive`` runs without asking only when it is
listed in ``[safety] auto_approve``. ``forbidden`` never runs, whatever the settings or flags.
``opaque`` (code the classifier cannot see) and security-critical commands (firewall off, uid-0 users,
authorized_keys, sudoers, setuid…) always wait for an operator's explicit answer: neither ``--yes`` nor
``auto_approve`` covers them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from fazai.config import SafetySettings

from .classifier import classify
from .model import CHANGES_STATE, DESTRUCTIVE, FORBIDDEN, OPAQUE, READ_ONLY, Risk

YES_COVERS: frozenset[Risk] = frozenset({CHANGES_STATE})
# Never approved without an operator: not by --yes, not by [safety] auto_approve.
NEVER_AUTO: frozenset[Risk] = frozenset({OPAQUE, FORBIDDEN})


def yes_may_approve(risk: Risk | str) -> bool:
    """Whether a non-interactive ``--yes`` run may answer an approval for this class by itself."""
    raw = str(getattr(risk, "value", risk))
    return raw in {r.value for r in YES_COVERS | {READ_ONLY}}


@dataclass
class Decision:
    """What to do with one action: run it, ask the operator first, or refuse."""

    verdict: Literal["allow", "ask", "deny"]
    risk: Risk
    reasons: list[str] = field(default_factory=list)
    # Security-critical or opaque: only an operator's explicit answer approves it.
    needs_operator: bool = False


class SafetyPolicy:
    """Decides whether a command (or a tool with a declared risk) may run as root."""

    def __init__(self, settings: SafetySettings, *, assume_yes: bool = False):
        self.settings = settings
        self.assume_yes = assume_yes
        self.auto_approve = ({Risk(v) for v in settings.auto_approve} | {READ_ONLY}) - NEVER_AUTO
        self._forbidden: list[re.Pattern[str]] = []
        self.bad_patterns: list[str] = []
        for pat in settings.extra_forbidden:
            try:
                self._forbidden.append(re.compile(pat))
            except re.error as exc:
                # A broken pattern must not silently disable itself: every command matching nothing still
                # gets checked, but the operator sees why in each decision's reasons.
                self.bad_patterns.append(
                    f"[safety] extra_forbidden pattern {pat!r} is invalid ({exc}); fix it"
                )
        self.extra_read_only = frozenset(getattr(settings, "extra_read_only", []) or [])
        # Classification is a pure function of the command here (the loop asks twice per shell
        # action: to decide, then whether the machine changed); parsing is the costly part.
        self._classified: dict[str, tuple[Risk, tuple[str, ...], bool]] = {}

    def check_command(self, command: str) -> Decision:
        """Classify ``command`` and decide: forbidden → deny; read_only → allow; else allow if
        ``auto_approve`` (or ``--yes`` for changes_state) covers the class, otherwise ask."""
        for rx in self._forbidden:
            if rx.search(command):
                return Decision(
                    "deny", FORBIDDEN, [f"matches [safety] extra_forbidden pattern {rx.pattern!r}"]
                )
        cached = self._classified.get(command)
        if cached is None:
            v = classify(command, extra_read_only=self.extra_read_only)
            if len(self._classified) >= 512:
                self._classified.clear()
            cached = self._classified[command] = (v.risk, tuple(v.reasons), v.needs_operator)
        return self._decide(cached[0], [*cached[1], *self.bad_patterns], needs_operator=cached[2])

    def check_risk(
        self, risk: Risk | str | None, what: str, *, critical: bool = False, why: str | None = None
    ) -> Decision:
        """Decide for an action whose risk is known (a tool with a derived class, an OPNsense call);
        unknown or missing → changes_state. Accepts a :class:`Risk`, its string value or such an enum.
        ``critical``: security-critical (opens or disables the firewall…): only an operator approves it."""
        raw = getattr(risk, "value", risk)
        try:
            r = Risk(raw) if raw is not None else CHANGES_STATE
        except ValueError:
            r = CHANGES_STATE
        reasons = [f"{what}: {why or 'class ' + r.value}"]
        if critical:
            # Security-critical is at least destructive: every consumer that looks only at the class
            # (the --yes auto-reply in the session runner) then refuses it too.
            r = max(r, DESTRUCTIVE)
            reasons.append(f"{what}: security-critical, needs an explicit approval (never --yes)")
        return self._decide(r, reasons, needs_operator=critical)

    def _decide(self, risk: Risk, reasons: list[str], *, needs_operator: bool = False) -> Decision:
        needs_operator = needs_operator or risk in NEVER_AUTO
        if risk == FORBIDDEN:
            return Decision("deny", risk, reasons, True)
        if risk == READ_ONLY and not needs_operator:
            return Decision("allow", risk, reasons)
        if needs_operator:
            if self.assume_yes:
                reasons = [*reasons, "not covered by --yes: an operator must approve it"]
            return Decision("ask", risk, reasons, True)
        if risk in self.auto_approve:
            return Decision("allow", risk, reasons)
        if self.assume_yes and risk in YES_COVERS:
            return Decision("allow", risk, [*reasons, "approved by --yes"])
        return Decision("ask", risk, reasons)
