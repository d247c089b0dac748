"""EVE ingest: lines in → deduplicated alerts (with their raw record) and rejected lines, all stored.

The invariant a test and the benchmark check: every line counted in is accounted for,
``lines == alerts + duplicates + other + rejected + blank``, and every stored alert's ``count``
adds up to ``alerts + duplicates``. A malformed line is stored in ``eve_rejects`` with the reason,
never dropped silently.

Feeding is synchronous and in memory (parse, dedup); :meth:`EveIngest.flush` writes what was fed
in one transaction, so a burst costs one commit, not one per line.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.opnsense.alerts import SuricataAlert, parse_eve_record
from fazai.telemetry.dedup import Deduper, fingerprint
from fazai.telemetry.tables import alerts, eve_rejects

_MAX_REJECT_CHARS = 8192


@dataclass(slots=True)
class StoredAlert:
    """A new (not deduplicated) alert, as stored: what playbooks are matched against."""

    id: str
    source: str
    alert: SuricataAlert
    raw: dict[str, Any]


@dataclass
class Counters:
    """What an ingest has seen since it started."""

    lines: int = 0
    alerts: int = 0  # new alert rows
    duplicates: int = 0  # folded into an open group
    other: int = 0  # valid EVE records of another event_type (flow, dns, stats …)
    rejected: int = 0  # malformed lines (stored in eve_rejects)
    blank: int = 0

    def accounted(self) -> int:
        """Lines accounted for; equals ``lines`` unless something was lost."""
        return self.alerts + self.duplicates + self.other + self.rejected + self.blank

    def as_dict(self) -> dict[str, int]:
        return {
            "lines": self.lines,
            "alerts": self.alerts,
            "duplicates": self.duplicates,
            "other": self.other,
            "rejected": self.rejected,
            "blank": self.blank,
        }


def _epoch(a: SuricataAlert) -> float:
    return a.timestamp.timestamp()


@dataclass
class _Pending:
    new: list[dict[str, Any]] = field(default_factory=list)
    bumps: dict[str, list[float]] = field(default_factory=dict)  # alert id → [count delta, last_seen]
    rejects: list[dict[str, Any]] = field(default_factory=list)


class EveIngest:
    """Ingest of one source's EVE lines (a firewall's eve.json, an API poll, HTTP posts)."""

    def __init__(
        self,
        engine: AsyncEngine,
        source: str,
        *,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ):
        self.engine = engine
        self.source = source
        self.dedup = Deduper(window_s)
        self.clock = clock
        self.counters = Counters()
        self._pending = _Pending()
        self._lock = asyncio.Lock()

    async def load_open_groups(self) -> int:
        """Reopen this source's groups whose window is still open (after a restart): how many."""
        async with self.engine.connect() as conn:
            newest = (
                await conn.execute(
                    select(func.max(alerts.c.first_seen)).where(alerts.c.source == self.source)
                )
            ).scalar()
            if newest is None:
                return 0
            rows = (
                await conn.execute(
                    select(alerts.c.id, alerts.c.fingerprint, alerts.c.first_seen, alerts.c.last_seen)
                    .where(alerts.c.source == self.source, alerts.c.first_seen > newest - self.dedup.window_s)
                    .order_by(alerts.c.first_seen)
                )
            ).all()
        for r in rows:
            g = self.dedup.open(r.fingerprint, r.id, r.first_seen)
            g.last_seen = r.last_seen
        return len(rows)

    # -- feeding (sync, in memory) -------------------------------------------------------------

    def feed_line(self, line: str) -> StoredAlert | None:
        """Account for one EVE line; the new alert it opens (None: duplicate, other, blank, rejected)."""
        self.counters.lines += 1
        text = line.strip()
        if not text:
            self.counters.blank += 1
            return None
        try:
            rec = json.loads(text)
        except ValueError as e:
            return self._reject(line, f"not a JSON line: {e}")
        if not isinstance(rec, dict):
            return self._reject(line, f"not a JSON object (a {type(rec).__name__})")
        return self.feed_record(rec, line=line)

    def feed_record(self, rec: dict[str, Any], *, line: str | None = None) -> StoredAlert | None:
        """Account for one decoded EVE record (``lines`` is counted by :meth:`feed_line` only)."""
        if line is None:
            self.counters.lines += 1
        try:
            alert = parse_eve_record(rec)
        except (KeyError, ValueError, TypeError, ValidationError) as e:
            return self._reject(line if line is not None else json.dumps(rec), _why(e))
        if alert is None:
            self.counters.other += 1
            return None
        return self.feed_alert(alert, rec, count_line=False)

    def feed_alert(
        self, alert: SuricataAlert, raw: dict[str, Any], *, count_line: bool = True
    ) -> StoredAlert | None:
        """Account for an alert already parsed (an OPNsense ``queryAlerts`` row); ``raw`` is kept."""
        if count_line:
            self.counters.lines += 1
        ts = _epoch(alert)
        fp = fingerprint(self.source, alert)
        group = self.dedup.lookup(fp, ts)
        if group is not None:
            self.counters.duplicates += 1
            bump = self._pending.bumps.get(group.alert_id)
            if bump is None:
                self._pending.bumps[group.alert_id] = [1, ts]
            else:
                bump[0] += 1
                bump[1] = max(bump[1], ts)
            return None
        aid = "a_" + uuid.uuid4().hex[:16]
        self.dedup.open(fp, aid, ts)
        self.counters.alerts += 1
        self._pending.new.append(
            {
                "id": aid,
                "source": self.source,
                "fingerprint": fp,
                "signature_id": alert.signature_id,
                "signature": alert.signature,
                "category": alert.category,
                "severity": alert.severity,
                "src_ip": alert.src_ip,
                "dest_ip": alert.dest_ip,
                "proto": alert.proto,
                "in_iface": alert.in_iface,
                "first_seen": ts,
                "last_seen": ts,
                "count": 1,
                "raw": raw,
            }
        )
        return StoredAlert(aid, self.source, alert, raw)

    def _reject(self, line: str, reason: str) -> None:
        self.counters.rejected += 1
        self._pending.rejects.append(
            {
                "source": self.source,
                "received": self.clock(),
                "line": line[:_MAX_REJECT_CHARS],
                "reason": reason,
            }
        )
        return None

    # -- writing -------------------------------------------------------------------------------

    def pending(self) -> int:
        """Rows fed and not yet written."""
        p = self._pending
        return len(p.new) + len(p.bumps) + len(p.rejects)

    async def flush(self) -> None:
        """Write everything fed so far in one transaction (a failed write keeps it for the next try)."""
        async with self._lock:
            p, self._pending = self._pending, _Pending()
            if not (p.new or p.bumps or p.rejects):
                return
            try:
                async with self.engine.begin() as conn:
                    if p.new:
                        await conn.execute(insert(alerts), p.new)
                    if p.bumps:
                        await conn.execute(
                            update(alerts)
                            .where(alerts.c.id == bindparam("aid"))
                            .values(
                                count=alerts.c.count + bindparam("delta"),
                                last_seen=func.max(alerts.c.last_seen, bindparam("ls"))
                                if self.engine.dialect.name == "sqlite"
                                else func.greatest(alerts.c.last_seen, bindparam("ls")),
                            ),
                            [{"aid": k, "delta": int(v[0]), "ls": v[1]} for k, v in p.bumps.items()],
                        )
                    if p.rejects:
                        await conn.execute(insert(eve_rejects), p.rejects)
            except Exception:
                # Nothing fed is lost: put it back in front of whatever arrived meanwhile.
                self._pending.new[:0] = p.new
                for k, v in p.bumps.items():
                    cur = self._pending.bumps.setdefault(k, [0, v[1]])
                    cur[0] += v[0]
                    cur[1] = max(cur[1], v[1])
                self._pending.rejects[:0] = p.rejects
                raise


def _why(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"EVE alert record without the {e.args[0]!r} field"
    if isinstance(e, ValidationError):
        errs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()[:3])
        return f"EVE alert record with bad fields: {errs}"
    return f"EVE alert record not understood: {e}"


async def stored_counts(engine: AsyncEngine, source: str | None = None) -> dict[str, int]:
    """What the store holds: alert rows, the sum of their counts, rejected lines (for one source or all)."""
    qa = select(func.count(), func.coalesce(func.sum(alerts.c.count), 0))
    qr = select(func.count()).select_from(eve_rejects)
    if source is not None:
        qa = qa.where(alerts.c.source == source)
        qr = qr.where(eve_rejects.c.source == source)
    async with engine.connect() as conn:
        rows, total = (await conn.execute(qa.select_from(alerts))).one()
        rejected = (await conn.execute(qr)).scalar()
    return {"alert_rows": int(rows), "alerts_counted": int(total), "rejected": int(rejected or 0)}


async def follow_lines(
    path: Path, *, from_start: bool = False, poll_s: float = 0.05, stop: asyncio.Event | None = None
) -> AsyncIterator[list[str]]:
    """Batches of complete lines appended to ``path``; survives rotation (new inode) and truncation.

    A missing file is waited for. Each batch is what one read returned, so a burst is one batch.
    """
    pos, inode, buf = -1, None, b""
    while stop is None or not stop.is_set():
        try:
            st = os.stat(path)  # one syscall on a local file: inline is fine
        except FileNotFoundError:
            st = None
        if st is not None:
            if pos < 0:
                pos = 0 if from_start else st.st_size
                inode = st.st_ino
            if inode != st.st_ino or st.st_size < pos:  # rotated or truncated: read the new file
                inode, pos, buf = st.st_ino, 0, b""
            if st.st_size > pos:
                fd = os.open(path, os.O_RDONLY)
                try:
                    chunk = os.pread(fd, st.st_size - pos, pos)
                finally:
                    os.close(fd)
                pos += len(chunk)
                buf += chunk
                *lines, buf = buf.split(b"\n")
                if lines:
                    yield [raw.decode("utf-8", "replace") for raw in lines]
                    continue
        elif pos < 0:
            pos = 0  # the file appears later: read it from its start
        await asyncio.sleep(poll_s)
