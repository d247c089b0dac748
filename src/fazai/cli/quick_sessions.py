"""Read-only listing of a SQLite store with the standard library (no SQLAlchemy or Alembic import).

`fazai sessions` without a daemon only reads one table: paying ~1 s of imports for that is what made
it slow. Anything but a plain SQLite file (PostgreSQL, a missing table) returns ``None`` and the
caller falls back to the full store.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

_COLUMNS = ("id", "goal", "mode", "status", "created_at", "updated_at", "model", "summary")


def list_sessions(url: str, limit: int = 50) -> list[dict[str, Any]] | None:
    """Sessions, most recently updated first (as ``Store.list_sessions``), or ``None`` (use the store)."""
    # Not fazai.store (its package imports SQLAlchemy): the URL is parsed here.
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    raw = url.split(":///", 1)[1].split("?", 1)[0]
    if not raw or raw == ":memory:":
        return None
    path = Path(raw)
    if not path.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return None
    try:
        rows = con.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM sessions ORDER BY updated_at DESC, id LIMIT ?", (limit,)
        ).fetchall()
    except sqlite3.Error:
        return None  # not migrated yet, or another schema: the full store knows what to do
    finally:
        con.close()
    return [dict(zip(_COLUMNS, r, strict=True)) for r in rows]
