"""An append-only, hash-chained audit trail in the store.

Each record holds the HMAC-SHA256 (keyed by ``<state_dir>/audit.key``, 0600) of its own fields and the
previous record's hash, and records are numbered 1, 2, 3… without gaps. So an edited record fails its
own hash, a removed one leaves a gap (or breaks the next record's link), a reordered pair breaks the
links, and without the key nobody can recompute a consistent chain. :meth:`AuditLog.verify` names the
first record that does not hold.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.audit.schema import records
from fazai.auth.secrets import ensure_key_file
from fazai.protocol import utcnow_iso

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

    async def verify(self) -> VerifyResult:
        """Walk the chain; the first record that is edited, missing, out of order or unlinked."""
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
            prev, expected_seq = r.hash, r.seq + 1
        return VerifyResult(True, n)

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
