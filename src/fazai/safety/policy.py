"""The safety policy: turn a risk into allow / ask / deny using ``[safety]`` settings and ``--yes``.

``--yes`` answers approvals for ``changes_state`` only. ``destructive`` runs without asking only when it is
listed in ``[safety] auto_approve``. ``forbidden`` never runs, whatever the settings or flags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from fazai.config import SafetySettings

from .classifier import classify
from .model import CHANGES_STATE, FORBIDDEN, READ_ONLY, Risk

YES_COVERS: frozenset[Risk] = frozenset({CHANGES_STATE})


@dataclass
class Decision:
    """What to do with one action: run it, ask the operator first, or refuse."""

    verdict: Literal["allow", "ask", "deny"]
    risk: Risk
    reasons: list[str] = field(default_factory=list)


class SafetyPolicy:
    """Decides whether a command (or a tool with a declared risk) may run as root."""

    def __init__(self, settings: SafetySettings, *, assume_yes: bool = False):
        self.settings = settings
        self.assume_yes = assume_yes
        self.auto_approve = {Risk(v) for v in settings.auto_approve} | {READ_ONLY}
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
        self._classified: dict[str, tuple[Risk, tuple[str, ...]]] = {}

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
            cached = self._classified[command] = (v.risk, tuple(v.reasons))
        return self._decide(cached[0], [*cached[1], *self.bad_patterns])

    def check_risk(self, risk: Risk | str | None, what: str) -> Decision:
        """Decide for a tool that declares its own risk class (unknown or missing → changes_state).
        Accepts a :class:`Risk`, its string value (``fazai.tools.spec.Risk`` literals) or such an enum."""
        raw = getattr(risk, "value", risk)
        try:
            r = Risk(raw) if raw is not None else CHANGES_STATE
        except ValueError:
            r = CHANGES_STATE
        return self._decide(r, [f"{what}: declared {r.value}"])

    def _decide(self, risk: Risk, reasons: list[str]) -> Decision:
        if risk == FORBIDDEN:
            return Decision("deny", risk, reasons)
        if risk in self.auto_approve:
            return Decision("allow", risk, reasons)
        if self.assume_yes and risk in YES_COVERS:
            return Decision("allow", risk, [*reasons, "approved by --yes"])
        return Decision("ask", risk, reasons)
