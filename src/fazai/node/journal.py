"""The agent's disk memory (SQLite, stdlib): executed action ids and the outbox.

- ``executed``: every action id the agent has started, recorded *before* it runs. A command resent
  after a reconnect or a fazaid restart finds its id here and is not run again (exactly-once effects);
  one that was running when the agent itself died is reported as interrupted, never re-run.
- ``outbox``: every frame the agent owes the server (output chunks, exits, results, telemetry), in
  order. A frame leaves the outbox only when the server's ``ack`` lists it, so results produced while
  disconnected are delivered, in order, on reconnect.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executed (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, started REAL NOT NULL,
  final TEXT
);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, action TEXT, frame TEXT NOT NULL
);
"""


class Journal:
    """Executed ids and outbox in ``<state_dir>/journal.db``. Thread-safe; each call is one commit."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged-by-nobody result must survive a power cut as well as a crash.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def begin(self, action: str, kind: str) -> tuple[str, str | None] | None:
        """Record ``action`` as running; None if new, else its ``(state, final frame)`` from before."""
        with self._lock:
            row = self._db.execute("SELECT state, final FROM executed WHERE id=?", (action,)).fetchone()
            if row is not None:
                return row[0], row[1]
            self._db.execute(
                "INSERT INTO executed (id, kind, state, started) VALUES (?,?,?,?)",
                (action, kind, "running", time.time()),
            )
            return None

    def state(self, action: str) -> str | None:
        """``running`` / ``done`` for an action this agent started, None for one it never started."""
        with self._lock:
            row = self._db.execute("SELECT state FROM executed WHERE id=?", (action,)).fetchone()
        return row[0] if row else None

    def put(self, frame_id: str, action: str | None, frame: str) -> int:
        """Append a frame to the outbox; returns its sequence number."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO outbox (id, action, frame) VALUES (?,?,?)", (frame_id, action, frame)
            )
            return int(cur.lastrowid or 0)

    def finish(self, action: str, frame_id: str, frame: str) -> int:
        """Append the final frame of ``action`` and mark it done, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO outbox (id, action, frame) VALUES (?,?,?)",
                    (frame_id, action, frame),
                )
                self._db.execute("UPDATE executed SET state='done', final=? WHERE id=?", (frame, action))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return int(cur.lastrowid or 0)

    def after(self, seq: int, limit: int = 256) -> list[tuple[int, str]]:
        """Outbox frames with sequence > ``seq``, oldest first."""
        with self._lock:
            return self._db.execute(
                "SELECT seq, frame FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
            ).fetchall()

    def ack(self, ids: list[str]) -> None:
        """The server stored these frames: forget them."""
        if not ids:
            return
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE id=?", [(i,) for i in ids])

    def pending(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def interrupted(self) -> list[tuple[str, str]]:
        """Actions that were running when the agent stopped: ``[(id, kind)]``."""
        with self._lock:
            return self._db.execute("SELECT id, kind FROM executed WHERE state='running'").fetchall()

    def prune(self, older_than_s: float = 30 * 86400) -> None:
        """Forget executed ids older than the server could still resend (a month by default)."""
        with self._lock:
            self._db.execute(
                "DELETE FROM executed WHERE state='done' AND started < ?", (time.time() - older_than_s,)
            )
