"""Before/after diffs of desired-state operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ChangeAction = Literal["create", "update", "delete", "noop", "add", "remove", "apply", "rollback"]


@dataclass
class Change:
    """One change to one item, computed before it is made (and made unless ``dry_run``)."""

    kind: str
    name: str
    action: ChangeAction
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    uuid: str | None = None
    dry_run: bool = False
    note: str = ""

    @property
    def changed(self) -> bool:
        """True when the change does something (a no-op has an empty diff)."""
        return self.action != "noop"

    def diff(self) -> dict[str, dict[str, Any]]:
        """``{field: {"before": x, "after": y}}`` for the fields that differ."""
        if self.action == "noop":
            return {}
        b, a = self.before or {}, self.after or {}
        return {
            k: {"before": b.get(k), "after": a.get(k)}
            for k in sorted(set(b) | set(a))
            if b.get(k) != a.get(k)
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the CLI prints with ``--json`` and tools return)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "uuid": self.uuid,
            "dry_run": self.dry_run,
            "diff": self.diff(),
            "note": self.note,
        }

    def summary(self) -> str:
        """One line for humans."""
        verb = {"noop": "unchanged"}.get(self.action, self.action)
        prefix = "[dry-run] would " if self.dry_run and self.changed else ""
        fields = ", ".join(f"{k}: {v['before']!r} → {v['after']!r}" for k, v in self.diff().items())
        tail = f" ({fields})" if fields and self.action == "update" else ""
        note = f" — {self.note}" if self.note else ""
        return f"{prefix}{verb} {self.kind} {self.name}{tail}{note}"


@dataclass
class Result:
    """The outcome of an operation: its changes plus free-form data (reads, apply status)."""

    changes: list[Change] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(c.changed for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "changes": [c.to_dict() for c in self.changes],
            "data": self.data,
            "notes": self.notes,
        }
