"""One firewall's operations: idempotent ensures with diffs and dry-run, apply and safe apply,
the ``fazai_block`` blocklist, IDS, Unbound, WireGuard, system reads and backups."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fazai.opnsense import errors as E
from fazai.opnsense import resources as R
from fazai.opnsense import safe_apply as _sa
from fazai.opnsense.alerts import SuricataAlert, parse_query_alerts_row
from fazai.opnsense.backups import BackupStore, pull_backup
from fazai.opnsense.blocklist import BLOCK_ALIAS, BLOCK_RULE, BlocklistMixin, _contains

__all__ = ["APPLY_PATHS", "BLOCK_ALIAS", "BLOCK_RULE", "Firewall", "Verify"]
from fazai.opnsense.client import OPNsenseClient, check_saved
from fazai.opnsense.diff import Change, Result
from fazai.opnsense.journal import Journal
from fazai.opnsense.model import ModelOps, apply_ok, to_wire

Verify = _sa.Verify

# Which endpoint makes staged changes of each module live.
APPLY_PATHS = {
    "alias": "firewall/alias/reconfigure",
    "filter": "firewall/filter/apply",
    "unbound": "unbound/service/reconfigure",
    "dnsbl": "unbound/service/dnsbl",
    "wireguard": "wireguard/service/reconfigure",
    "ids": "ids/service/reloadRules",
}


class Firewall(BlocklistMixin):
    """Operations on one OPNsense firewall. ``state_dir`` holds its blocks and backups."""

    def __init__(
        self,
        client: OPNsenseClient,
        state_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        never_block: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.client = client
        self.state_dir = Path(state_dir)
        self.clock = clock
        self.never_block = tuple(never_block)  # [opnsense] never_block: never covered by a block
        self.backups = BackupStore(self.state_dir / "backups")
        self.journal = Journal(self.state_dir / "journal.json", clock)
        self.aliases = ModelOps(client, R.ALIAS)
        self.rules = ModelOps(client, R.RULE)
        self.snat = ModelOps(client, R.SOURCE_NAT)
        self.one_to_one = ModelOps(client, R.ONE_TO_ONE)
        self.dnat = ModelOps(client, R.DNAT)
        self.host_overrides = ModelOps(client, R.HOST_OVERRIDE)
        self.dnsbl = ModelOps(client, R.DNSBL)
        self.wg_servers = ModelOps(client, R.WG_SERVER)
        self.wg_peers = ModelOps(client, R.WG_PEER)
        self.ids_policies = ModelOps(client, R.IDS_POLICY)

    async def connect(self) -> None:
        """Detect the version (rule lookups search every interface view, whatever the version)."""
        await self.client.capabilities()

    # ------------------------------------------------------------------ aliases
    async def ensure_alias(
        self,
        name: str,
        type: str = "host",
        content: list[str] | str = (),
        description: str = "",
        enabled: bool = True,
        *,
        dry_run: bool = False,
    ) -> Result:
        """Create or update alias ``name`` (content compared as a set)."""
        desired = {"name": name, "type": type, "content": to_wire(content, True), "enabled": enabled}
        if description:
            desired["description"] = description
        return Result([await self.aliases.ensure(desired, dry_run=dry_run)])

    async def delete_alias(self, name: str, *, dry_run: bool = False) -> Result:
        """Delete alias ``name`` (InUse if a rule still references it)."""
        return Result([await self.aliases.delete({"name": name}, dry_run=dry_run)])

    async def list_aliases(self) -> list[dict[str, Any]]:
        """Alias rows (name, type, description, …)."""
        return await self.aliases.list()

    async def alias_table(self, name: str) -> list[str]:
        """Addresses currently loaded in the pf table of alias ``name``."""
        reply = await self.client.get(f"firewall/alias_util/list/{name}")
        return [str(r.get("ip")) for r in (reply or {}).get("rows", [])] if isinstance(reply, dict) else []

    async def _alias_util(self, verb: str, name: str, address: str | None) -> None:
        body = {"address": address} if address is not None else {}
        reply = await self.client.post(f"firewall/alias_util/{verb}/{name}", body)
        status = reply.get("status") if isinstance(reply, dict) else None
        if status != "done":
            detail = reply.get("status_msg", status) if isinstance(reply, dict) else reply
            raise E.OperationFailed(f"alias_util/{verb}/{name} {address or ''}: {detail}")

    async def alias_add(
        self, name: str, address: str, *, dry_run: bool = False, journal: bool = True
    ) -> Result:
        """Add ``address`` to the live table (host/network aliases also persist it), no reload."""
        present = _contains(await self.alias_table(name), address)
        ch = Change("alias_entry", f"{name}:{address}", "noop" if present else "add", dry_run=dry_run)
        undo = {"op": "alias_remove", "alias": name, "address": address}
        res = Result([ch], data={"undo": undo})
        if not present:
            ch.after = {"address": address}
            if not dry_run:
                await self._alias_util("add", name, address)
                if journal:
                    self.journal.record("alias_add", f"{name}:{address}", undo)
        return res

    async def alias_remove(
        self, name: str, address: str, *, dry_run: bool = False, journal: bool = True
    ) -> Result:
        """Remove ``address`` from the live table (and the config for host/network aliases)."""
        present = _contains(await self.alias_table(name), address)
        ch = Change("alias_entry", f"{name}:{address}", "remove" if present else "noop", dry_run=dry_run)
        undo = {"op": "alias_add", "alias": name, "address": address}
        res = Result([ch], data={"undo": undo})
        if present:
            ch.before = {"address": address}
            if not dry_run:
                await self._alias_util("delete", name, address)
                if journal:
                    self.journal.record("alias_remove", f"{name}:{address}", undo)
        return res

    async def alias_flush(self, name: str, *, dry_run: bool = False) -> Result:
        """Empty the live pf table of ``name`` (config unchanged); the entries are journalled for undo."""
        entries = await self.alias_table(name)
        ch = Change(
            "alias_table",
            name,
            "remove" if entries else "noop",
            {"entries": len(entries)},
            {"entries": 0},
            dry_run=dry_run,
        )
        undo = {"op": "alias_refill", "alias": name, "addresses": entries}
        if entries and not dry_run:
            await self._alias_util("flush", name, None)
            self.journal.record("alias_flush", name, undo)
        return Result([ch], data={"undo": undo})

    async def undo(self, ident: str = "last", *, dry_run: bool = False) -> Result:
        """Undo a journalled runtime change (``last`` or its id from ``journal.list()``)."""
        item = self.journal.get(ident)
        u = item.get("undo")
        if not u:
            raise E.OperationFailed(f"journal entry {item['id']} ({item['action']}) has no undo")
        if item.get("undone"):
            raise E.OperationFailed(f"journal entry {item['id']} was already undone")
        if u.get("op") == "config_revert":  # a revert is undone by a revert, which an operator confirms
            raise E.OperationFailed(
                f"journal entry {item['id']} is a configuration revert; undo it with `{u['cli']}` "
                "(it asks for confirmation and takes a fresh backup first)"
            )
        res = Result()
        if u.get("tool") == "opnsense.unblock_ip":
            res = await self.unblock_ip(u["args"]["ip"], dry_run=dry_run)
        elif u.get("op") == "alias_remove":
            res = await self.alias_remove(u["alias"], u["address"], dry_run=dry_run, journal=False)
        elif u.get("op") == "alias_add":
            res = await self.alias_add(u["alias"], u["address"], dry_run=dry_run, journal=False)
        elif u.get("op") == "alias_refill":
            for address in u["addresses"]:
                res.changes += (
                    await self.alias_add(u["alias"], address, dry_run=dry_run, journal=False)
                ).changes
        if not dry_run:
            self.journal.mark_undone(item["id"])
        res.data["undone"] = item["id"]
        return res

    # ------------------------------------------------------------------ rules
    async def ensure_rule(self, description: str, *, dry_run: bool = False, **fields: Any) -> Result:
        """Create or update the filter rule identified by ``description``."""
        return Result([await self.rules.ensure({"description": description, **fields}, dry_run=dry_run)])

    async def set_rule_enabled(self, description: str, enabled: bool, *, dry_run: bool = False) -> Result:
        """Enable or disable a rule by description."""
        return Result([await self.rules.set_enabled({"description": description}, enabled, dry_run=dry_run)])

    async def delete_rule(self, description: str, *, dry_run: bool = False) -> Result:
        """Delete a rule by description."""
        return Result([await self.rules.delete({"description": description}, dry_run=dry_run)])

    async def list_rules(self, phrase: str = "") -> list[dict[str, Any]]:
        """Filter rule rows of every interface view (25.7 and 26.1 list floating rules only
        when ``searchRule`` gets no ``interface``; see :meth:`ModelOps.list`)."""
        return await self.rules.list(phrase)

    async def move_rule(self, description: str, before: str, *, dry_run: bool = False) -> Result:
        """Move rule ``description`` before rule ``before`` (25.7+: moveRuleBefore; else sequence)."""
        a = await self.rules.find({"description": description})
        b = await self.rules.find({"description": before})
        if a is None or b is None:
            missing = description if a is None else before
            raise E.OperationFailed(
                f"rule {missing!r} not found; list rules with `fazai opnsense rule list`."
            )
        seq_a, seq_b = int(a[1].get("sequence") or 0), int(b[1].get("sequence") or 0)
        if seq_a < seq_b:
            return Result(
                [
                    Change(
                        "rule",
                        description,
                        "noop",
                        {"sequence": str(seq_a)},
                        {"sequence": str(seq_a)},
                        uuid=a[0],
                        note=f"already before {before!r}",
                    )
                ]
            )
        caps = await self.client.capabilities()
        new_seq = max(1, seq_b - 1)
        ch = Change(
            "rule",
            description,
            "update",
            {"sequence": str(seq_a)},
            {"sequence": str(new_seq)},
            uuid=a[0],
            dry_run=dry_run,
            note=f"move before {before!r}",
        )
        if not dry_run:
            if caps.move_rule:
                reply = await self.client.post(f"firewall/filter/moveRuleBefore/{a[0]}/{b[0]}")
                if not isinstance(reply, dict) or reply.get("status") != "ok":
                    raise E.OperationFailed(f"moveRuleBefore failed: {reply!r}")
                moved = await self.rules.get(a[0]) or {}
                ch.after = {"sequence": moved.get("sequence", str(new_seq))}
            else:
                check_saved(
                    "setRule",
                    await self.client.post(
                        f"firewall/filter/setRule/{a[0]}", {"rule": {"sequence": str(new_seq)}}
                    ),
                )
        return Result([ch])

    # ------------------------------------------------------------------ NAT
    async def ensure_nat(
        self, kind: str, description: str, *, dry_run: bool = False, **fields: Any
    ) -> Result:
        """Ensure a source NAT (``snat``) or one-to-one (``one_to_one``) rule by description."""
        ops = {"snat": self.snat, "one_to_one": self.one_to_one}.get(kind)
        if ops is None:
            raise E.NotSupported(
                f"NAT kind {kind!r}: use 'snat' or 'one_to_one' (port forwards: ensure_port_forward, 26.1+)."
            )
        return Result([await ops.ensure({"description": description, **fields}, dry_run=dry_run)])

    async def ensure_port_forward(
        self,
        description: str,
        *,
        interface: str = "wan",
        protocol: str = "TCP",
        destination: str = "wanip",
        destination_port: str,
        target: str,
        local_port: str = "",
        source: str = "any",
        dry_run: bool = False,
    ) -> Result:
        """Ensure a port forward (destination NAT, 26.1+) identified by ``description``."""
        caps = await self.client.capabilities()
        if not caps.dnat:
            raise E.NotSupported(
                f"OPNsense {caps.version} has no port-forward API (firewall/d_nat is new in 26.1); "
                "create the port forward in the GUI (Firewall → NAT → Port Forward) or update the firewall."
            )
        desired = {
            "descr": description,
            "interface": interface,
            "protocol": protocol,
            "source.network": source,
            "destination.network": destination,
            "destination.port": destination_port,
            "target": target,
            "local-port": local_port or destination_port,
        }
        return Result([await self.dnat.ensure(desired, dry_run=dry_run)])

    async def delete_port_forward(self, description: str, *, dry_run: bool = False) -> Result:
        """Delete a port forward by description (26.1+)."""
        return Result([await self.dnat.delete({"descr": description}, dry_run=dry_run)])

    async def delete_nat(self, kind: str, description: str, *, dry_run: bool = False) -> Result:
        """Delete a NAT rule by description."""
        ops = {"snat": self.snat, "one_to_one": self.one_to_one}[kind]
        return Result([await ops.delete({"description": description}, dry_run=dry_run)])

    # ------------------------------------------------------------------ apply
    async def apply(self, modules: list[str], *, dry_run: bool = False) -> Result:
        """Make staged changes live, module by module (``alias``, ``filter``, ``unbound``, …)."""
        res = Result()
        for m in modules:
            path = APPLY_PATHS.get(m)
            if path is None:
                raise ValueError(f"unknown module {m!r}; one of {', '.join(APPLY_PATHS)}")
            ch = Change("apply", m, "apply", dry_run=dry_run, note=path)
            res.changes.append(ch)
            if dry_run:
                continue
            reply = await self.client.post(path)
            if not apply_ok(reply):
                raise E.OperationFailed(
                    f"{path}: apply failed ({reply!r}); check System → Log Files → Backend."
                )
        return res

    async def api_alive(self) -> bool:
        """True if a NEW connection to the API gets an answer (used to verify after an apply)."""
        return await _sa.api_alive(self)

    async def safe_apply(
        self,
        verify: Verify | None = None,
        *,
        change: Callable[[], Awaitable[Result]] | None = None,
        dry_run: bool = False,
        revert_now: bool = True,
        aliases: bool = True,
    ) -> Result:
        """Apply filter rules (and aliases) so that a change that cuts us off undoes itself.

        ≤ 26.1: savepoint → ``change()`` (staged only) → ``apply/{rev}`` (the 60 s rollback timer
        is armed before the reload) → alias reconfigure → verify over a new connection (+ ``verify``)
        → cancelRollback; a failed verify reverts at once when a new connection still gets in,
        otherwise the firewall's timer restores the savepoint. Edits staged *before* this call
        (without ``change``) are part of the savepoint and are not undone. 26.7+: no savepoint, so
        a config.xml backup is taken first. See :mod:`fazai.opnsense.safe_apply`.
        """
        return await _sa.safe_apply(
            self, verify, change=change, dry_run=dry_run, revert_now=revert_now, aliases=aliases
        )

    # ------------------------------------------------------------------ IDS
    async def ids_status(self) -> dict[str, Any]:
        """Suricata service status."""
        return await self.client.get("ids/service/status")

    async def ids_update_rules(self, *, dry_run: bool = False) -> Result:
        """Download and install rule updates (``ids/service/updateRules``)."""
        return await self._run_action("ids/service/updateRules", "ids", "update rules", dry_run)

    async def ids_reload_rules(self, *, dry_run: bool = False) -> Result:
        """Reload rules after policy/rule changes (``ids/service/reloadRules``)."""
        return await self._run_action("ids/service/reloadRules", "ids", "reload rules", dry_run)

    async def _run_action(self, path: str, kind: str, name: str, dry_run: bool) -> Result:
        res = Result([Change(kind, name, "apply", dry_run=dry_run, note=path)])
        if not dry_run:
            reply = await self.client.post(path)
            if not apply_ok(reply):
                raise E.OperationFailed(f"{path}: failed ({reply!r})")
        return res

    async def query_alerts(self, limit: int = 50, phrase: str = "") -> list[SuricataAlert]:
        """Newest IDS alerts from ``ids/service/queryAlerts`` (POST-only)."""
        reply = await self.client.search(
            "ids/service/queryAlerts", {"current": 1, "rowCount": limit, "searchPhrase": phrase, "fileid": ""}
        )
        rows = reply.get("rows", []) if isinstance(reply, dict) else []
        return [parse_query_alerts_row(r) for r in rows]

    async def ids_rule_action(
        self, sid: int, action: str, enabled: bool = True, *, dry_run: bool = False
    ) -> Result:
        """Set one installed rule's action (``alert``/``drop``) and enabled state."""
        if action not in ("alert", "drop"):
            raise ValueError("action must be 'alert' or 'drop'")
        info = await self.client.get(f"ids/settings/getRuleInfo/{sid}")
        if not isinstance(info, dict) or not info:
            raise E.OperationFailed(f"IDS rule sid {sid} is not installed; update the rules first.")
        cur_action = info.get("action")
        if isinstance(cur_action, dict):
            cur_action = next((k for k, v in cur_action.items() if str(v.get("selected")) == "1"), "")
        before = {
            "action": str(cur_action),
            "enabled": "1" if str(info.get("enabled")) in ("1", "True", "true") else "0",
        }
        after = {"action": action, "enabled": "1" if enabled else "0"}
        ch = Change(
            "ids_rule", str(sid), "noop" if before == after else "update", before, after, dry_run=dry_run
        )
        if ch.changed and not dry_run:
            check_saved(
                f"ids/settings/setRule/{sid}", await self.client.post(f"ids/settings/setRule/{sid}", after)
            )
        return Result([ch])

    async def ensure_ids_policy(self, description: str, *, dry_run: bool = False, **fields: Any) -> Result:
        """Ensure an IDS policy (e.g. new_action=drop for a ruleset) by description."""
        return Result(
            [await self.ids_policies.ensure({"description": description, **fields}, dry_run=dry_run)]
        )

    # ------------------------------------------------------------------ Unbound
    async def ensure_host_override(
        self,
        hostname: str,
        domain: str,
        server: str,
        rr: str = "A",
        description: str = "",
        *,
        dry_run: bool = False,
    ) -> Result:
        """Ensure an Unbound host override ``hostname.domain`` → ``server``."""
        desired = {"hostname": hostname, "domain": domain, "rr": rr, "server": server, "enabled": "1"}
        if description:
            desired["description"] = description
        return Result([await self.host_overrides.ensure(desired, dry_run=dry_run)])

    async def delete_host_override(self, hostname: str, domain: str, *, dry_run: bool = False) -> Result:
        """Delete an Unbound host override."""
        return Result(
            [await self.host_overrides.delete({"hostname": hostname, "domain": domain}, dry_run=dry_run)]
        )

    async def ensure_dnsbl(
        self, types: list[str], description: str = "fazai", *, dry_run: bool = False
    ) -> Result:
        """Enable DNSBL with these list ``types``.

        26.1+: one blocklist entry (by description); before: the ``unbound.dnsbl`` settings container.
        """
        caps = await self.client.capabilities()
        want_types = ",".join(sorted(types))
        if caps.dnsbl_model:
            return Result(
                [
                    await self.dnsbl.ensure(
                        {"description": description, "enabled": "1", "type": want_types}, dry_run=dry_run
                    )
                ]
            )
        reply = await self.client.get("unbound/settings/get")
        from fazai.opnsense.model import flatten_item

        current = flatten_item(((reply or {}).get("unbound") or {}).get("dnsbl") or {})
        before = {
            "enabled": current.get("enabled", "0"),
            "type": ",".join(sorted(p for p in current.get("type", "").split(",") if p)),
        }
        after = {"enabled": "1", "type": want_types}
        ch = Change(
            "dnsbl", "unbound.dnsbl", "noop" if before == after else "update", before, after, dry_run=dry_run
        )
        if ch.changed and not dry_run:
            check_saved(
                "unbound/settings/set",
                await self.client.post("unbound/settings/set", {"unbound": {"dnsbl": after}}),
            )
        return Result([ch])

    # ------------------------------------------------------------------ WireGuard
    async def ensure_wg_server(self, name: str, *, dry_run: bool = False, **fields: Any) -> Result:
        """Ensure a WireGuard instance by name (``privkey``, ``pubkey``, ``port``, ``tunneladdress``…)."""
        return Result([await self.wg_servers.ensure({"name": name, **fields}, dry_run=dry_run)])

    async def ensure_wg_peer(self, name: str, *, dry_run: bool = False, **fields: Any) -> Result:
        """Ensure a WireGuard peer by name (``pubkey``, ``tunneladdress``, ``servers``…)."""
        return Result([await self.wg_peers.ensure({"name": name, **fields}, dry_run=dry_run)])

    # ------------------------------------------------------------------ system
    async def firmware_status(self) -> dict[str, Any]:
        """Firmware status (GET: no probe)."""
        return await self.client.get("core/firmware/status")

    async def resources(self) -> dict[str, Any]:
        """Memory and load readings."""
        return {
            "resources": await self.client.get("diagnostics/system/systemResources"),
            "time": await self.client.get("diagnostics/system/systemTime"),
        }

    async def interfaces(self) -> list[dict[str, Any]]:
        """Interface overview rows."""
        reply = await self.client.get("interfaces/overview/interfacesInfo")
        return reply.get("rows", []) if isinstance(reply, dict) else []

    async def gateways(self) -> list[dict[str, Any]]:
        """Gateway status items."""
        reply = await self.client.get("routes/gateway/status")
        return reply.get("items", []) if isinstance(reply, dict) else []

    async def services(self) -> list[dict[str, Any]]:
        """Services with running state."""
        reply = await self.client.get("core/service/search")
        return reply.get("rows", []) if isinstance(reply, dict) else []

    async def backup(self, note: str = "") -> Result:
        """Download config.xml and keep it (time + SHA-256) in the state dir."""
        before = self.backups.list()
        b = await pull_backup(self.client, self.backups, note)
        new = not before or before[-1].id != b.id
        ch = Change(
            "backup",
            b.id,
            "create" if new else "noop",
            None,
            {"sha256": b.sha256, "size": b.size},
            note="" if new else "unchanged since the last backup",
        )
        return Result([ch], data={"id": b.id, "file": str(self.backups.dir / b.file), "sha256": b.sha256})
