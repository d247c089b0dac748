"""Alert deduplication: the same signature from the same source within a window is one alert.

The window opens at the first alert of a group (event time, the EVE ``timestamp``) and does not
slide: a source that keeps firing gets a new group, and so a new alert row, every ``window_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fazai.opnsense.alerts import SuricataAlert


@dataclass(slots=True)
class Group:
    """One open dedup group: the alert row it folds into."""

    alert_id: str
    first_seen: float
    last_seen: float


def fingerprint(source: str, alert: SuricataAlert) -> str:
    """The dedup key: where the alert came from, its signature (gid:sid) and its source address."""
    return f"{source}|{alert.gid or 1}:{alert.signature_id}|{alert.src_ip}"


class Deduper:
    """Open groups by fingerprint; bounded by pruning groups whose window has passed."""

    def __init__(self, window_s: float = 60.0):
        self.window_s = window_s
        self.groups: dict[str, Group] = {}
        self._newest = 0.0

    def lookup(self, fp: str, ts: float) -> Group | None:
        """The open group ``fp`` belongs to at event time ``ts``, or None (a new alert)."""
        g = self.groups.get(fp)
        if g is not None and 0 <= ts - g.first_seen < self.window_s:
            g.last_seen = max(g.last_seen, ts)
            return g
        return None

    def open(self, fp: str, alert_id: str, ts: float) -> Group:
        """Start a group for a new alert row."""
        g = self.groups[fp] = Group(alert_id, ts, ts)
        if ts > self._newest:
            self._newest = ts
            if len(self.groups) > 4096:
                self.prune()
        return g

    def prune(self) -> int:
        """Forget groups whose window ended before the newest event; how many were dropped."""
        limit = self._newest - self.window_s
        stale = [fp for fp, g in self.groups.items() if g.first_seen < limit]
        for fp in stale:
            del self.groups[fp]
        return len(stale)
