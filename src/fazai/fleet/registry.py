"""Enrollment state in the store: bootstrap tokens, enrollments, agents, certificates, revocations.

Every check that grants access reads the database (not a cache), so a revocation or a used token
takes effect at the next handshake, even one handled by another fazaid process on the same store.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.fleet import ca as ca_mod
from fazai.fleet.schema import fleet_agents, fleet_certs, fleet_enrollments, fleet_tokens
from fazai.protocol import utcnow_iso
from fazai.wire import WireError, parse_token

NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class EnrollError(Exception):
    """Enrollment refused; the message says why and what to do. ``code`` is a stable short name."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def parse_ttl(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``2d`` (or plain seconds) → seconds; ValueError naming the format."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise ValueError(f"bad TTL {text!r}: use a number with s, m, h or d (e.g. 1h, 30m)")
    n = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if n <= 0:
        raise ValueError(f"bad TTL {text!r}: it must be more than zero")
    return n


@dataclass(slots=True)
class Outcome:
    """The answer to an enrollment or a poll."""

    status: str  # issued | pending | rejected
    enrollment: str
    node: str
    cert: str | None = None
    message: str = ""


class Registry:
    """Fleet enrollment state over the store's engine, with the CA that signs."""

    def __init__(self, engine: AsyncEngine, ca: ca_mod.CertificateAuthority, *, cert_days: float = 30):
        self.engine = engine
        self.ca = ca
        self.cert_days = cert_days
        # The hello last written per node: an unchanged one (a reconnect) is written like a heartbeat.
        self._hellos: dict[str, dict[str, Any]] = {}

    # -- tokens ---------------------------------------------------------------------------------

    async def create_token(self, site: str, ttl_s: float, note: str | None = None) -> tuple[str, str, str]:
        """A one-time bootstrap token for ``site``: ``(token, id, expires_at)``."""
        if not site or not NODE_NAME.match(site):
            raise EnrollError(f"bad site name {site!r}: letters, digits, '.', '_' and '-'", "bad_site")
        tid, secret, digest = ca_mod.new_token_secret()
        expires = _iso(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl_s))
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(fleet_tokens).values(
                    id=tid,
                    secret_hash=digest,
                    site=site,
                    created_at=utcnow_iso(),
                    expires_at=expires,
                    note=note,
                )
            )
        return ca_mod.format_token(tid, secret, self.ca.pin), tid, expires

    # -- enrollment -----------------------------------------------------------------------------

    async def enroll(
        self,
        token: str,
        csr: str,
        *,
        hostname: str = "",
        facts: dict[str, str] | None = None,
        require_approval: bool = False,
    ) -> Outcome:
        """Spend ``token`` on ``csr``: issue a certificate now, or leave the enrollment pending."""
        try:
            tid, secret, pin = parse_token(token)
        except WireError as e:
            raise EnrollError(str(e), "bad_token") from e
        if not hmac.compare_digest(pin, self.ca.pin):
            raise EnrollError(
                "the token was made by another CA (its pin does not match this server's)", "wrong_ca"
            )
        try:
            key_id = ca_mod.csr_key_id(csr)
            node = _csr_name(csr)
        except ca_mod.CAError as e:
            raise EnrollError(str(e), "bad_csr") from e
        if not NODE_NAME.match(node):
            raise EnrollError(f"bad node name {node!r}: letters, digits, '.', '_' and '-' (≤ 63)", "bad_name")
        now = utcnow_iso()
        eid = "e_" + uuid.uuid4().hex[:16]
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(fleet_tokens).where(fleet_tokens.c.id == tid))).first()
            if row is None or not hmac.compare_digest(row.secret_hash, ca_mod.hash_secret(secret)):
                raise EnrollError(
                    "unknown bootstrap token: make a new one with `fazai nodes token`", "bad_token"
                )
            if row.used_at is not None:
                raise EnrollError(
                    f"bootstrap token {tid} was already used at {row.used_at}: tokens are one-time, make "
                    "a new one with `fazai nodes token`",
                    "token_used",
                )
            if _parse_iso(row.expires_at) <= dt.datetime.now(dt.UTC):
                raise EnrollError(
                    f"bootstrap token {tid} expired at {row.expires_at}: make a new one with "
                    "`fazai nodes token`",
                    "token_expired",
                )
            agent = (await conn.execute(select(fleet_agents).where(fleet_agents.c.name == node))).first()
            if agent is not None and agent.status == "active":
                raise EnrollError(
                    f"a node named {node!r} is already enrolled: revoke it first (`fazai nodes revoke "
                    f"{node}`) or enroll this one under another name (--name)",
                    "name_taken",
                )
            # The token is spent in the same transaction that records the enrollment: a concurrent
            # second use finds used_at set (or loses the update) and is refused.
            res = await conn.execute(
                update(fleet_tokens)
                .where(fleet_tokens.c.id == tid, fleet_tokens.c.used_at.is_(None))
                .values(used_at=now, used_by=eid)
            )
            if res.rowcount != 1:
                raise EnrollError(f"bootstrap token {tid} was already used", "token_used")
            await conn.execute(
                insert(fleet_enrollments).values(
                    id=eid,
                    node=node,
                    site=row.site,
                    token_id=tid,
                    key_id=key_id,
                    csr=csr,
                    status="pending" if require_approval else "approved",
                    hostname=hostname,
                    facts=facts or {},
                    created_at=now,
                )
            )
        if require_approval:
            return Outcome(
                "pending", eid, node, message=f"waiting for an operator: `fazai nodes approve {eid}`"
            )
        return await self._issue(eid)

    async def poll(self, enrollment: str, csr: str) -> Outcome:
        """The state of a pending enrollment; the CSR must carry the same key as the first one."""
        try:
            key_id = ca_mod.csr_key_id(csr)
        except ca_mod.CAError as e:
            raise EnrollError(str(e), "bad_csr") from e
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(fleet_enrollments).where(fleet_enrollments.c.id == enrollment))
            ).first()
        if row is None or not hmac.compare_digest(row.key_id, key_id):
            raise EnrollError(
                f"no enrollment {enrollment} for this key: enroll again with a new token",
                "unknown_enrollment",
            )
        if row.status == "pending":
            return Outcome("pending", row.id, row.node, message="still waiting for an operator")
        if row.status == "rejected":
            return Outcome("rejected", row.id, row.node, message="an operator rejected this enrollment")
        return await self._issue(row.id)

    async def _issue(self, eid: str) -> Outcome:
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(fleet_enrollments).where(fleet_enrollments.c.id == eid))).one()
            agent = (await conn.execute(select(fleet_agents).where(fleet_agents.c.name == row.node))).first()
            if agent is not None and agent.status == "revoked" and row.status == "issued":
                return Outcome("rejected", eid, row.node, message="this node was revoked")
            issued = self.ca.sign_node(row.csr, row.node, row.site, self.cert_days)
            now = utcnow_iso()
            await self._record_cert(conn, row.node, issued)
            if agent is None:
                await conn.execute(
                    insert(fleet_agents).values(
                        name=row.node, site=row.site, status="active", enrolled_at=now
                    )
                )
            else:
                await conn.execute(
                    update(fleet_agents)
                    .where(fleet_agents.c.name == row.node)
                    .values(status="active", site=row.site, enrolled_at=now)
                )
            await conn.execute(
                update(fleet_enrollments)
                .where(fleet_enrollments.c.id == eid)
                .values(status="issued", cert_serial=issued.serial, decided_at=row.decided_at or now)
            )
        # An enrolled node is in the inventory from now on, not from its first hello: the hello is
        # written in batches, and a session aimed at a node that is already connected must find it.
        from fazai.store.inventory import Inventory

        await Inventory(self.engine).upsert_node(row.node, transport="agent", site=row.site)
        return Outcome("issued", eid, row.node, cert=issued.pem)

    @staticmethod
    async def _record_cert(conn: Any, node: str, issued: ca_mod.Issued) -> None:
        await conn.execute(
            insert(fleet_certs).values(
                serial=issued.serial,
                node=node,
                not_before=_iso(issued.not_before),
                not_after=_iso(issued.not_after),
                issued_at=utcnow_iso(),
            )
        )

    async def pending(self) -> list[dict[str, Any]]:
        """Enrollments waiting for an operator, oldest first."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(fleet_enrollments)
                    .where(fleet_enrollments.c.status == "pending")
                    .order_by(fleet_enrollments.c.created_at)
                )
            ).all()
        return [
            {k: r._mapping[k] for k in ("id", "node", "site", "hostname", "created_at", "key_id")}
            for r in rows
        ]

    async def decide(self, enrollment: str, approve: bool) -> str:
        """Approve or reject a pending enrollment (the agent picks its certificate up at its next poll)."""
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(fleet_enrollments)
                .where(fleet_enrollments.c.id == enrollment, fleet_enrollments.c.status == "pending")
                .values(status="approved" if approve else "rejected", decided_at=utcnow_iso())
            )
            if res.rowcount != 1:
                row = (
                    await conn.execute(select(fleet_enrollments).where(fleet_enrollments.c.id == enrollment))
                ).first()
                if row is None:
                    raise EnrollError(f"no enrollment {enrollment} (see `fazai nodes pending`)", "unknown")
                raise EnrollError(f"enrollment {enrollment} is {row.status}, not pending", "not_pending")
            row = (
                await conn.execute(select(fleet_enrollments).where(fleet_enrollments.c.id == enrollment))
            ).one()
        return row.node

    # -- certificates ---------------------------------------------------------------------------

    async def check_serial(self, serial: str, node: str) -> str | None:
        """None when certificate ``serial`` of ``node`` may connect, else the reason it may not."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(fleet_certs).where(fleet_certs.c.serial == serial))).first()
            agent = (await conn.execute(select(fleet_agents).where(fleet_agents.c.name == node))).first()
        if row is None:
            return f"certificate {serial} is unknown to this server"
        if row.node != node:
            return f"certificate {serial} belongs to {row.node}, not {node}"
        if row.revoked_at is not None:
            why = row.reason or "no reason given"
            return f"certificate {serial} of {node} was revoked at {row.revoked_at} ({why})"
        if agent is None or agent.status != "active":
            return f"node {node} is {agent.status if agent else 'not enrolled'}"
        return None

    async def valid_serials(self) -> dict[str, str]:
        """``{serial: node}`` of every unrevoked certificate of an active node (the handshake cache)."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(fleet_certs.c.serial, fleet_certs.c.node)
                    .join(fleet_agents, fleet_agents.c.name == fleet_certs.c.node)
                    .where(fleet_certs.c.revoked_at.is_(None), fleet_agents.c.status == "active")
                )
            ).all()
        return {r.serial: r.node for r in rows}

    async def revoke(self, node: str, reason: str = "revoked by operator") -> int:
        """Revoke every certificate of ``node`` and mark it revoked; returns how many certificates."""
        now = utcnow_iso()
        async with self.engine.begin() as conn:
            agent = (await conn.execute(select(fleet_agents).where(fleet_agents.c.name == node))).first()
            if agent is None:
                raise EnrollError(f"no enrolled node {node!r}", "unknown_node")
            await conn.execute(
                update(fleet_agents).where(fleet_agents.c.name == node).values(status="revoked")
            )
            res = await conn.execute(
                update(fleet_certs)
                .where(fleet_certs.c.node == node, fleet_certs.c.revoked_at.is_(None))
                .values(revoked_at=now, reason=reason)
            )
        return res.rowcount

    async def revoked_since(self, since: str) -> tuple[list[tuple[str, str]], str]:
        """``([(serial, node)…], newest revoked_at)`` for revocations at or after ``since``."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(fleet_certs.c.serial, fleet_certs.c.node, fleet_certs.c.revoked_at).where(
                        fleet_certs.c.revoked_at >= since
                    )
                )
            ).all()
        newest = max([since, *(r.revoked_at for r in rows)])
        return [(r.serial, r.node) for r in rows], newest

    async def renew(self, node: str, serial: str, csr: str) -> ca_mod.Issued:
        """A fresh certificate for a connected node whose current one (``serial``) is still good."""
        why = await self.check_serial(serial, node)
        if why is not None:
            raise EnrollError(why, "revoked")
        try:
            if _csr_name(csr) != node:
                raise EnrollError(f"the renewal CSR names {_csr_name(csr)!r}, not {node!r}", "bad_csr")
        except ca_mod.CAError as e:
            raise EnrollError(str(e), "bad_csr") from e
        async with self.engine.connect() as conn:
            agent = (await conn.execute(select(fleet_agents).where(fleet_agents.c.name == node))).one()
        issued = self.ca.sign_node(csr, node, agent.site, self.cert_days)
        async with self.engine.begin() as conn:
            await self._record_cert(conn, node, issued)
        return issued

    async def agents(self) -> list[dict[str, Any]]:
        """Enrolled agents with their newest certificate's expiry."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(fleet_agents).order_by(fleet_agents.c.name))).all()
            certs = (await conn.execute(select(fleet_certs.c.node, fleet_certs.c.not_after))).all()
        newest: dict[str, str] = {}
        for c in certs:
            newest[c.node] = max(newest.get(c.node, ""), c.not_after)
        return [
            {
                "name": r.name,
                "site": r.site,
                "status": r.status,
                "enrolled_at": r.enrolled_at,
                "last_seen": r.last_seen,
                "cert_not_after": newest.get(r.name),
            }
            for r in rows
        ]

    async def touch_many(self, seen: dict[str, dict[str, Any] | None]) -> None:
        """Record that these nodes were seen now (with their hello where given), in one transaction.

        The inventory follows: a hello makes (or updates) the node there, transport agent with its
        site and version; a heartbeat only moves its ``last_heartbeat``, in one statement for all.
        """
        from fazai.store.inventory import Inventory
        from fazai.store.inventory_schema import inv_nodes

        now = utcnow_iso()
        # A reconnect storm of thousands repeats hellos already written: those (and heartbeats) are one
        # statement per 500 nodes; only a new or changed hello costs its own writes (bench_fleet.py).
        hellos = [n for n, h in seen.items() if h is not None and self._hellos.get(n) != _same(h)]
        fresh = set(hellos)
        beats = [n for n in seen if n not in fresh]
        sites: dict[str, str | None] = {}
        # 200 hellos per transaction: a backlog of thousands (a 10,000-node ramp on a busy host) must
        # not hold SQLite's write lock past other writers' busy timeout (10 s: "database is locked").
        for i in range(0, len(hellos), 200):
            async with self.engine.begin() as conn:
                for node in hellos[i : i + 200]:
                    values = {"last_seen": now, "hello": seen[node]}
                    q = update(fleet_agents).where(fleet_agents.c.name == node).values(**values)
                    await conn.execute(q)
                q = select(fleet_agents.c.name, fleet_agents.c.site)
                rows = await conn.execute(q.where(fleet_agents.c.name.in_(hellos[i : i + 200])))
                sites.update({name: site for name, site in rows.all()})
        async with self.engine.begin() as conn:
            for i in range(0, len(beats), 500):
                chunk = beats[i : i + 500]
                await conn.execute(
                    update(fleet_agents).where(fleet_agents.c.name.in_(chunk)).values(last_seen=now)
                )
                await conn.execute(
                    update(inv_nodes).where(inv_nodes.c.name.in_(chunk)).values(last_heartbeat=now)
                )
        inv = Inventory(self.engine)
        for node in hellos:
            hello = seen[node] or {}
            await inv.upsert_node(node, transport="agent", site=sites.get(node),
                                  version=hello.get("agent_version"), heartbeat_at=now)  # fmt: skip
            self._hellos[node] = _same(hello)

    async def touch(self, node: str, hello: dict[str, Any] | None = None) -> None:
        """Record that ``node`` was seen now (and its hello): :meth:`touch_many` for one node."""
        await self.touch_many({node: hello})


def _same(hello: dict[str, Any]) -> dict[str, Any]:
    """What makes a hello new: all of it but the outbox count, which changes on every reconnect."""
    return {k: v for k, v in hello.items() if k != "pending"}


def _csr_name(csr: str) -> str:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        req = x509.load_pem_x509_csr(csr.encode())
    except ValueError as e:
        raise ca_mod.CAError(f"the CSR is not a valid PEM certificate request: {e}") from e
    names = req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""
