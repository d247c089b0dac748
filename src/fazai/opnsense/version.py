"""Firmware version parsing and the capabilities that depend on it."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class FirmwareVersion:
    """An OPNsense version such as ``25.7.3`` (series ``25.7``)."""

    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> FirmwareVersion:
        """Parse ``26.1``, ``25.7.3``, ``25.7.3_1`` or ``27.1.a``; raise ValueError otherwise."""
        m = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", text or "")
        if not m:
            raise ValueError(f"not an OPNsense version: {text!r}")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))

    @property
    def series(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" if self.patch else f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class Capabilities:
    """What this firewall's API can do, derived from its version (see docs/opnsense.md)."""

    version: FirmwareVersion | None

    def _at_least(self, major: int, minor: int) -> bool:
        # Unknown version: assume the newest behaviour, which is also the most conservative
        # (no savepoint → backups first).
        return self.version is None or self.version.series >= (major, minor)

    @property
    def savepoint(self) -> bool:
        """filter savepoint / apply/{rev} / cancelRollback / revert exist up to 26.1 (removed in 26.7)."""
        return self.version is not None and self.version.series <= (26, 1)

    @property
    def raw_search_rows(self) -> bool:
        """Search rows carry raw values + ``%field`` descriptions from 25.7 (display values before)."""
        return self._at_least(25, 7)

    @property
    def rule_search_by_interface(self) -> bool:
        """``searchRule`` without ``interface`` returns only floating rules (25.7.x and 26.1;
        every rule again from 26.1.1). FazAI searches every view anyway; this is informational."""
        v = self.version
        return v is not None and (v.series == (25, 7) or (v.series == (26, 1) and v.patch == 0))

    @property
    def dnsbl_model(self) -> bool:
        """DNSBL is a list of blocklists with its own CRUD from 26.1 (one settings container before)."""
        return self._at_least(26, 1)

    @property
    def multi_delete(self) -> bool:
        """``del*/{uuid1,uuid2}`` (comma-separated) is accepted from 26.7."""
        return self._at_least(26, 7)

    @property
    def dnat(self) -> bool:
        """Destination NAT (port forward) has an MVC API from 26.1."""
        return self._at_least(26, 1)

    @property
    def move_rule(self) -> bool:
        """``moveRuleBefore`` exists from 25.7."""
        return self._at_least(25, 7)

    def as_dict(self) -> dict[str, object]:
        """Plain dict for ``--json`` output."""
        return {
            "version": str(self.version) if self.version else None,
            "savepoint": self.savepoint,
            "raw_search_rows": self.raw_search_rows,
            "dnsbl_model": self.dnsbl_model,
            "multi_delete": self.multi_delete,
            "dnat": self.dnat,
            "move_rule": self.move_rule,
        }
