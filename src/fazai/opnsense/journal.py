"""A journal of the runtime changes FazAI made on one firewall (blocks, table edits) with how to
undo each, kept in ``<state_dir>/opnsense/<name>/journal.json`` (written atomically)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fazai.opnsense.errors import OperationFailed

_KEEP = 1000  # newest entries kept


class Journal:
    """Append-only list of ``{id, time, action, target, undo, undone}``."""

    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self.path = Path(path)
        self.clock = clock

    def list(self) -> list[dict[str, Any]]:
        """All entries, oldest first."""
        return json.loads(self.path.read_text()) if self.path.exists() else []

    def record(self, action: str, target: str, undo: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
        """Add an entry (``undo`` None: nothing to undo, e.g. an unblock)."""
        items = self.list()
        nid = (int(items[-1]["id"]) + 1) if items else 1
        item = {"id": nid, "time": self.clock(), "action": action, "target": target, "undo": undo, **extra}
        self._write([*items, item][-_KEEP:])
        return item

    def get(self, ident: str) -> dict[str, Any]:
        """An entry by id, or ``last`` (the newest entry not undone that has an undo)."""
        items = self.list()
        if ident == "last":
            open_items = [i for i in items if i.get("undo") and not i.get("undone")]
            if not open_items:
                raise OperationFailed("nothing to undo: the journal has no open change")
            return open_items[-1]
        found = [i for i in items if str(i["id"]) == str(ident)]
        if not found:
            raise OperationFailed(f"no journal entry {ident!r}; see `fazai opnsense journal`")
        return found[0]

    def mark_undone(self, ident: int) -> None:
        """Mark entry ``ident`` undone (kept for the record)."""
        items = self.list()
        for i in items:
            if i["id"] == ident:
                i["undone"] = self.clock()
        self._write(items)

    def _write(self, items: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(items, indent=2) + "\n")
        os.replace(tmp, self.path)  # a crash leaves the old journal or the new one, never half
