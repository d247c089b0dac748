"""The ``fazai_block`` blocklist: an alias plus its block rule, runtime table adds with TTLs, the
guards that keep a block off protected addresses, and the journal of what to undo."""

from __future__ import annotations

import contextlib
import ipaddress
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fazai.opnsense import errors as E
from fazai.opnsense import guard
from fazai.opnsense.diff import Change, Result

if TYPE_CHECKING:
    from collections.abc import Callable

    from fazai.opnsense.client import OPNsenseClient
    from fazai.opnsense.journal import Journal
    from fazai.opnsense.model import ModelOps

BLOCK_ALIAS = "fazai_block"
BLOCK_RULE = "fazai: block sources in fazai_block"


class BlocklistMixin:
    """Blocklist operations of :class:`~fazai.opnsense.firewall.Firewall` (kept apart for size).

    Uses the firewall's ``client``, ``aliases``/``rules`` ops, ``journal``, ``safe_apply`` and the
    alias table helpers."""

    client: OPNsenseClient
    state_dir: Path
    clock: Callable[[], float]
    never_block: tuple[str, ...]
    journal: Journal
    aliases: ModelOps
    rules: ModelOps

    @property
    def _blocks_file(self) -> Path:
        return self.state_dir / "blocks.json"

    def _load_blocks(self) -> dict[str, dict[str, Any]]:
        return json.loads(self._blocks_file.read_text()) if self._blocks_file.exists() else {}

    def _save_blocks(self, blocks: dict[str, dict[str, Any]]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._blocks_file.write_text(json.dumps(blocks, indent=2, sort_keys=True) + "\n")

    def _check_blockable(self, ip: str) -> str:
        try:
            net = ipaddress.ip_network(ip.strip(), strict=False)
        except ValueError as e:
            raise ValueError(
                f"{ip!r} is not an IP address or network (e.g. 203.0.113.7 or 203.0.113.0/24)"
            ) from e
        min_prefix = 8 if net.version == 4 else 32
        if net.prefixlen < min_prefix:
            raise ValueError(f"refusing to block {net}: wider than /{min_prefix}; block smaller networks")
        return str(net) if net.prefixlen != net.max_prefixlen else str(net.network_address)

    async def protected_addresses(self) -> tuple[list[guard.Protected], list[str]]:
        """What no block may cover (own API address, resolved; our source address; the operator's
        SSH client; gateways; ``never_block``), and notes on what could not be read."""
        return await guard.protected(self, self.never_block)

    async def ensure_blocklist(self, *, interface: str = "wan", dry_run: bool = False) -> Result:
        """Create the ``fazai_block`` alias and its block rule if missing, and apply them safely."""
        alias = {"name": BLOCK_ALIAS, "type": "network", "description": "FazAI blocklist (managed by fazai)"}
        rule = {
            "description": BLOCK_RULE,
            "action": "block",
            "quick": "1",
            "interface": interface,
            "direction": "in",
            "ipprotocol": "inet46",
            "protocol": "any",
            "source_net": BLOCK_ALIAS,
            "destination_net": "any",
            "log": "1",
            "sequence": "1",
            "enabled": "1",
        }

        async def change() -> Result:
            return Result(
                [
                    await self.aliases.ensure(alias, dry_run=dry_run),
                    await self.rules.ensure(rule, dry_run=dry_run),
                ]
            )

        planned = await change() if dry_run else None
        if planned is not None:
            return planned
        # Check first without touching anything: an existing setup needs no savepoint or reload.
        self_check = Result(
            [await self.aliases.ensure(alias, dry_run=True), await self.rules.ensure(rule, dry_run=True)]
        )
        if not self_check.changed:
            return self_check
        applied = await self.safe_apply(change=change)
        if applied.data.get("status") != "applied":
            raise E.OperationFailed(
                f"the blocklist rule could not be applied safely: {'; '.join(applied.notes)}"
            )
        return applied

    async def block_ip(
        self,
        ip: str,
        reason: str,
        ttl_s: float | None = None,
        *,
        interface: str = "wan",
        dry_run: bool = False,
    ) -> Result:
        """Block ``ip`` (address or network) by adding it to ``fazai_block`` at runtime (no reload).

        The alias and its block rule are created on first use. ``ttl_s`` makes the block temporary
        (removed by :meth:`expire_blocks`, which runs on every block/unblock/list).
        """
        if not reason.strip():
            raise ValueError("a reason is required for a block (it is kept with the block)")
        entry = self._check_blockable(ip)
        items, guard_notes = await self.protected_addresses()
        guard.check(ipaddress.ip_network(entry, strict=False), items)
        res = Result(notes=guard_notes)
        res.changes += (await self.expire_blocks(dry_run=dry_run)).changes
        setup = await self.ensure_blocklist(interface=interface, dry_run=dry_run)
        res.changes += setup.changes
        res.notes += setup.notes
        alias_exists = not any(c.kind == "alias" and c.action == "create" for c in setup.changes)
        present = alias_exists and _contains(await self.alias_table(BLOCK_ALIAS), entry)
        now = self.clock()
        expires = now + ttl_s if ttl_s else None
        ch = Change(
            "block",
            entry,
            "noop" if present else "add",
            dry_run=dry_run,
            after={"address": entry, "reason": reason, "expires": expires},
        )
        if present:
            ch.note = "already blocked (expiry/reason updated)"
        res.changes.append(ch)
        undo = {
            "tool": "opnsense.unblock_ip",
            "args": {"ip": entry},
            "cli": f"fazai opnsense unblock {entry}",
        }
        res.data["undo"] = undo
        if dry_run:
            return res
        if not present:
            await self._alias_util("add", BLOCK_ALIAS, entry)
            self.journal.record("block", entry, undo, reason=reason)
        blocks = self._load_blocks()
        blocks[entry] = {
            "reason": reason,
            "created": blocks.get(entry, {}).get("created", now),
            "expires": expires,
            "undo": undo,
        }
        self._save_blocks(blocks)
        return res

    async def unblock_ip(self, ip: str, *, dry_run: bool = False) -> Result:
        """Remove ``ip`` from ``fazai_block`` (runtime and config)."""
        entry = self._check_blockable(ip)
        res = await self.alias_remove(BLOCK_ALIAS, entry, dry_run=dry_run, journal=False)
        res.changes[0].kind, res.changes[0].name = "block", entry
        if res.changed and not dry_run:
            self.journal.record("unblock", entry, None)
        if not dry_run:
            blocks = self._load_blocks()
            if blocks.pop(entry, None) is not None:
                self._save_blocks(blocks)
        return res

    async def expire_blocks(self, *, dry_run: bool = False) -> Result:
        """Remove temporary blocks whose TTL has passed."""
        res = Result()
        blocks = self._load_blocks()
        now = self.clock()
        for entry, meta in sorted(blocks.items()):
            if meta.get("expires") and meta["expires"] <= now:
                ch = Change(
                    "block",
                    entry,
                    "remove",
                    {"address": entry, "reason": meta.get("reason")},
                    None,
                    dry_run=dry_run,
                    note="expired",
                )
                res.changes.append(ch)
                if not dry_run:
                    with contextlib.suppress(E.OperationFailed):  # alias gone: nothing left to unblock
                        await self._alias_util("delete", BLOCK_ALIAS, entry)
                    blocks.pop(entry)
        if not dry_run and res.changes:
            self._save_blocks(blocks)
        return res

    async def list_blocks(self) -> list[dict[str, Any]]:
        """Live blocked entries with FazAI's reason/expiry where known."""
        blocks = self._load_blocks()
        try:
            live = await self.alias_table(BLOCK_ALIAS)
        except E.OPNsenseError:
            live = []
        out = []
        for a in live:
            key = next((k for k in blocks if _same(k, a)), a)
            meta = blocks.get(key, {})
            out.append(
                {
                    "address": a,
                    "reason": meta.get("reason"),
                    "expires": meta.get("expires"),
                    "created": meta.get("created"),
                }
            )
        return out


def _same(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_network(a, strict=False) == ipaddress.ip_network(b, strict=False)
    except ValueError:
        return a == b


def _contains(entries: list[str], address: str) -> bool:
    return any(_same(e, address) for e in entries)
