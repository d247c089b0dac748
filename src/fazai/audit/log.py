"""An append-only, hash-chained audit trail in the store.

Each record holds the HMAC-SHA256 (keyed by ``<state_dir>/audit.key``, 0600) of its own fields and the
previous record's hash, and records are numbered 1, 2, 3… without gaps. So an edited record fails its
own hash, a removed one leaves a gap (or breaks the next record's link), a reordered pair breaks the
links, and without the key nobody can recompute a consistent chain. :meth:`AuditLog.verify` names the
first record that does not hold.

Removing the *newest* records leaves a shorter chain that is still valid; the anchor
(:mod:`fazai.audit.anchor`, a signed file outside the database naming the newest record this host
has seen) catches that: ``verify`` requires the chain to reach the anchored record, with its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.audit.anchor import Anchor, AnchorError, anchor_path, locked, read_anchor, write_anchor
from fazai.audit.schema import records
from fazai.auth.secrets import ensure_key_file
from fazai.protocol import utcnow_iso

log = structlog.get_logger("fazai.audit")

GENESIS = "0" * 64
DECISIONS = ("allow", "deny", "ok", "fail")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """Who did what, from where, to what, with which outcome, when."""

    seq: int
    ts: str
    actor: str
    source: str
    action: str
    target: str
    decision: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    count: int
    bad_seq: int | None = None
    problem: str | None = None
    anchor: int | None = None  # the record the (first) anchor names; None without an anchor
    note: str | None = None  # not a failure, but worth saying (no anchor yet, anchor not updated)


def audit_key_path(state_dir: Path) -> Path:
    return Path(state_dir) / "audit.key"


def _canonical(
    seq: int,
    ts: str,
    actor: str,
    source: str,
    action: str,
    target: str,
    decision: str,
    detail: str,
    prev_hash: str,
) -> bytes:
    return json.dumps(
        [seq, ts, actor, source, action, target, decision, detail, prev_hash], separators=(",", ":")
    ).encode()


class AuditLog:
    """Append and read audit records; verify the chain."""

    def __init__(self, engine: AsyncEngine, state_dir: Path):
        self.engine = engine
        self._key_path = audit_key_path(state_dir)
        self._key: bytes | None = None
        self.anchor_path = anchor_path(state_dir)

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = ensure_key_file(self._key_path, 32)
        return self._key

    def _mac(self, *fields: Any) -> str:
        return hmac.new(self.key, _canonical(*fields), hashlib.sha256).hexdigest()

    async def append(
        self,
        actor: str,
        action: str,
        target: str = "",
        decision: str = "ok",
        *,
        source: str = "local",
        detail: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one record (retrying when another writer took the same number)."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
        body = json.dumps(detail or {}, sort_keys=True, default=str)
        for _ in range(20):
            async with self.engine.connect() as conn:
                last = (
                    await conn.execute(
                        select(records.c.seq, records.c.hash).order_by(records.c.seq.desc()).limit(1)
                    )
                ).first()
            seq = (last.seq + 1) if last else 1
            prev = last.hash if last else GENESIS
            ts = utcnow_iso()
            h = self._mac(seq, ts, actor, source, action, target, decision, body, prev)
            row = dict(
                seq=seq,
                ts=ts,
                actor=actor,
                source=source,
                action=action,
                target=target,
                decision=decision,
                detail=body,
                prev_hash=prev,
                hash=h,
            )
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(insert(records).values(**row))
            except IntegrityError:
                continue  # another process appended seq first: chain onto it
            # Only after the commit: the anchor never gets ahead of the chain (see anchor.py).
            await self._advance(seq, h)
            return AuditRecord(**{**row, "detail": detail or {}})
        raise RuntimeError("could not append to the audit trail (too much contention)")

    async def iter(self, *, after: int = 0, page: int = 500) -> AsyncIterator[AuditRecord]:
        """Every record in order."""
        last = after
        while True:
            async with self.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(records).where(records.c.seq > last).order_by(records.c.seq).limit(page)
                    )
                ).all()
            for r in rows:
                yield _rec(r)
                last = r.seq
            if len(rows) < page:
                return

    async def recent(
        self, limit: int = 100, *, actor: str | None = None, action: str | None = None
    ) -> list[AuditRecord]:
        """The newest records first."""
        q = select(records).order_by(records.c.seq.desc()).limit(limit)
        if actor:
            q = q.where(records.c.actor == actor)
        if action:
            q = q.where(records.c.action == action)
        async with self.engine.connect() as conn:
            return [_rec(r) for r in (await conn.execute(q)).all()]

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(records))).scalar() or 0)

    async def verify(self, extra_anchors: Sequence[Path] = (), *, advance: bool = False) -> VerifyResult:
        """Walk the chain; the first record that is edited, missing, out of order or unlinked — and
        then whether the chain still reaches this host's anchor (and each of ``extra_anchors``, copies
        of other replicas' anchor files). With ``advance``, an intact trail moves the anchor forward
        to its newest record, so this host also vouches for records other replicas appended."""
        anchors: list[Anchor] = []
        for path in (self.anchor_path, *extra_anchors):
            try:
                a = read_anchor(path, self.key)
            except AnchorError as e:
                return VerifyResult(False, 0, None, str(e))
            if a is not None:
                anchors.append(a)
            elif path != self.anchor_path:
                return VerifyResult(False, 0, None, f"no anchor file {path}")
        wanted = {a.seq for a in anchors}
        seen: dict[int, str] = {}
        expected_seq, prev, n = 1, GENESIS, 0
        async for r in self._raw():
            n += 1
            if r.seq != expected_seq:
                what = "missing" if r.seq > expected_seq else "out of order"
                return VerifyResult(
                    False, n, expected_seq, f"record {expected_seq} is {what} (found {r.seq} next)"
                )
            if r.prev_hash != prev:
                return VerifyResult(
                    False,
                    n,
                    r.seq,
                    f"record {r.seq} does not link to record {r.seq - 1} (removed, replaced or reordered)",
                )
            h = self._mac(
                r.seq, r.ts, r.actor, r.source, r.action, r.target, r.decision, r.detail, r.prev_hash
            )
            if not hmac.compare_digest(h, r.hash):
                return VerifyResult(
                    False, n, r.seq, f"record {r.seq} was edited (its hash does not match its content)"
                )
            if r.seq in wanted:
                seen[r.seq] = r.hash
            prev, expected_seq = r.hash, r.seq + 1
        last = expected_seq - 1
        for a in sorted(anchors, key=lambda a: -a.seq):
            where = f"the anchor {a.path} ({a.ts})"
            if a.seq > last:
                ends = f"ends at record {last}" if last else "is empty"
                return VerifyResult(
                    False, n, last + 1,
                    f"records after #{last} are missing (anchor says #{a.seq}): the trail {ends} but "
                    f"{where} saw it reach record {a.seq}",
                    a.seq,
                )  # fmt: skip
            if seen.get(a.seq) != a.hash:
                return VerifyResult(
                    False, n, a.seq,
                    f"record {a.seq} is not the one {where} saw: the records from #{a.seq} on were "
                    "removed and replaced",
                    a.seq,
                )  # fmt: skip
        mine = next((a.seq for a in anchors if a.path == self.anchor_path), None)
        note = None
        if mine is None and n and not advance:
            note = (
                f"no anchor file {self.anchor_path} yet (made at this host's next append): the removal "
                "of the newest records cannot be checked from here"
            )
        if advance and n and (mine or 0) < last:
            try:
                await self._advance(last, prev, strict=True)
                mine = last
            except OSError as e:
                note = f"the anchor could not be updated: {e}"
        return VerifyResult(True, n, anchor=mine, note=note)

    async def _hash_at(self, seq: int) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(records.c.hash).where(records.c.seq == seq))).scalar()

    async def _advance(self, seq: int, h: str, *, strict: bool = False) -> None:
        """Move the anchor to record ``seq`` — only forward, and only when the record it names now is
        still in the chain with its hash (so a truncated trail keeps its evidence)."""
        path = self.anchor_path
        try:
            cur = read_anchor(path, self.key)
        except AnchorError as e:
            log.error("audit_anchor_untrusted", error=str(e))  # kept as evidence, not overwritten
            return
        if cur is not None and cur.seq >= seq:
            return
        if cur is not None and await self._hash_at(cur.seq) != cur.hash:
            log.error(
                "audit_anchor_off_chain",
                anchor=cur.seq,
                record=seq,
                error=f"record {cur.seq} is no longer the one anchored: the anchor stays there",
            )
            return
        try:
            with locked(path):  # synchronous inside: no await while the lock is held
                again = read_anchor(path, self.key)
                if again is None or again.seq < seq:
                    write_anchor(path, self.key, seq, h, utcnow_iso())
        except (OSError, AnchorError) as e:
            if strict and isinstance(e, OSError):
                raise
            # The record is stored; the anchor lags behind (not an alarm) until the next append.
            log.warning("audit_anchor_not_written", record=seq, error=str(e))

    async def reset_anchor(self, actor: str, *, source: str = "local") -> AuditRecord:
        """Accept the trail as it is now (after a restore from backup, say): an audit record saying
        so, with the old anchor, then the anchor on that record."""
        try:
            old: Anchor | None = read_anchor(self.anchor_path, self.key)
            why = None
        except AnchorError as e:
            old, why = None, str(e)
        async with self.engine.connect() as conn:
            last = (await conn.execute(select(func.max(records.c.seq)))).scalar() or 0
        rec = await self.append(
            actor, "audit.anchor_reset", str(self.anchor_path), "ok", source=source,
            detail={"old_seq": old.seq if old else None, "old_hash": old.hash if old else None,
                    "old_problem": why, "trail_reached": last},
        )  # fmt: skip
        with locked(self.anchor_path):
            write_anchor(self.anchor_path, self.key, rec.seq, rec.hash, utcnow_iso())
        return rec

    async def _raw(self) -> AsyncIterator[Any]:
        last = -1
        while True:
            async with self.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(records).where(records.c.seq > last).order_by(records.c.seq).limit(500)
                    )
                ).all()
            for r in rows:
                yield r
                last = r.seq
            if len(rows) < 500:
                return


def _rec(r: Any) -> AuditRecord:
    try:
        detail = json.loads(r.detail)
    except ValueError:
        detail = {"unparsed": r.detail}
    return AuditRecord(
        r.seq, r.ts, r.actor, r.source, r.action, r.target, r.decision, detail, r.prev_hash, r.hash
    )
