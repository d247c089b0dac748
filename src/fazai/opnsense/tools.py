"""Built-in agent tools for OPNsense (for the ``use_tool`` action).

Each :class:`ToolDef` has a name (``opnsense.block_ip``), a description, JSON-Schema inputs, a risk
class for the safety policy, and an async ``run(args, ctx)`` that honours dry-run and returns a
JSON-ready dict with the before/after diff. Every tool takes an optional ``firewall`` (registered
name; default: the only one) and every changing tool an optional ``dry_run``.
"""

from __future__ import annotations

from typing import Any

from fazai.opnsense.diff import Result
from fazai.opnsense.firewall import APPLY_PATHS, Firewall
from fazai.opnsense.ops_tools import OPS_TOOLS
from fazai.opnsense.read_tools import READ_TOOLS
from fazai.opnsense.tooldef import (
    _DRY,
    _STR,
    RiskClass,
    ToolContext,
    ToolDef,
    ToolInputError,
    _always,
    _rule_critical,
    _schema,
    _tool,
    check_args,
)

__all__ = ["TOOLS", "RiskClass", "ToolContext", "ToolDef", "ToolInputError", "check_args", "get_tool"]


@_tool("opnsense.status", "Firewall version, capabilities and firmware status.", "read_only", _schema([]))
async def _status(fw: Firewall, args: dict[str, Any], dry: bool) -> dict[str, Any]:
    caps = await fw.client.capabilities()
    fs = await fw.firmware_status()
    return {
        "capabilities": caps.as_dict(),
        "firmware": {"status": fs.get("status"), "message": fs.get("status_msg")},
    }


@_tool("opnsense.list_aliases", "List firewall aliases.", "read_only", _schema([]))
async def _list_aliases(fw: Firewall, args: dict[str, Any], dry: bool) -> dict[str, Any]:
    return {"aliases": await fw.list_aliases()}


@_tool(
    "opnsense.ensure_alias",
    "Create or update an alias so it has exactly this type and content (idempotent). "
    "Staged until opnsense.apply.",
    "changes_state",
    _schema(
        ["name", "type", "content"],
        name=_STR,
        type={"type": "string", "enum": ["host", "network", "port", "url", "urltable", "geoip", "external"]},
        content={"type": "array", "items": {"type": "string"}},
        description=_STR,
        **_DRY,
    ),
)
async def _ensure_alias(fw: Firewall, a: dict[str, Any], dry: bool) -> Result:
    return await fw.ensure_alias(a["name"], a["type"], a["content"], a.get("description", ""), dry_run=dry)


@_tool(
    "opnsense.delete_alias",
    "Delete an alias (fails if a rule uses it).",
    "destructive",
    _schema(["name"], name=_STR, **_DRY),
)
async def _delete_alias(fw: Firewall, a: dict[str, Any], dry: bool) -> Result:
    return await fw.delete_alias(a["name"], dry_run=dry)


@_tool(
    "opnsense.list_rules",
    "List filter rules (optional search phrase).",
    "read_only",
    _schema([], search=_STR),
)
async def _list_rules(fw: Firewall, a: dict[str, Any], dry: bool) -> dict[str, Any]:
    return {"rules": await fw.list_rules(a.get("search", ""))}


_RULE_FIELDS = {
    "action": {"type": "string", "enum": ["pass", "block", "reject"]},
    "interface": {"type": "string", "description": "comma list: wan, lan, opt1…"},
    "direction": {"type": "string", "enum": ["in", "out", "any"]},
    "ipprotocol": {"type": "string", "enum": ["inet", "inet6", "inet46"]},
    "protocol": {"type": "string", "description": "any, TCP, UDP, TCP/UDP, ICMP…"},
    "source_net": _STR,
    "source_port": _STR,
    "destination_net": _STR,
    "destination_port": _STR,
    "log": {"type": "boolean"},
    "sequence": {"type": "integer"},
    "enabled": {"type": "boolean"},
}


@_tool(
    "opnsense.ensure_rule",
    "Create or update the filter rule identified by its description (idempotent). With apply=true the change "
    "is made inside a safe apply (savepoint, rollback if the firewall stops answering).",
    "changes_state",  # a staged block is routine; pass, apply and disable are security-critical (asked)
    _schema(["description", "action"], description=_STR, apply={"type": "boolean"}, **_RULE_FIELDS, **_DRY),
    critical=_rule_critical,
)
async def _ensure_rule(fw: Firewall, a: dict[str, Any], dry: bool) -> Result:
    fields = {k: v for k, v in a.items() if k in _RULE_FIELDS}
    if a.get("apply"):

        async def change() -> Result:
            return await fw.ensure_rule(a["description"], dry_run=dry, **fields)

        return await fw.safe_apply(change=change, dry_run=dry)
    return await fw.ensure_rule(a["description"], dry_run=dry, **fields)


@_tool(
    "opnsense.set_rule_enabled",
    "Enable or disable a filter rule by description. Staged until opnsense.apply.",
    "destructive",  # opens traffic / goes live: always asks, never covered by --yes
    _schema(["description", "enabled"], description=_STR, enabled={"type": "boolean"}, **_DRY),
    critical=_always("enabling or disabling a rule can open the firewall or lock the operator out"),
)
async def _set_rule_enabled(fw: Firewall, a: dict[str, Any], dry: bool) -> Result:
    return await fw.set_rule_enabled(a["description"], a["enabled"], dry_run=dry)


@_tool(
    "opnsense.delete_rule",
    "Delete a filter rule by description.",
    "destructive",
    _schema(["description"], description=_STR, **_DRY),
    critical=_always("deleting a rule can open the firewall"),
)
async def _delete_rule(fw: Firewall, a: dict[str, Any], dry: bool) -> Result:
    return await fw.delete_rule(a["description"], dry_run=dry)


@_tool(
    "opnsense.apply",
    "Make staged changes live. 'filter' uses safe apply (savepoint + rollback on 26.1 and older, a config "
    "backup first on newer versions).",
    "destructive",  # opens traffic / goes live: always asks, never covered by --yes
    _schema([], modules={"type": "array", "items": {"type": "string", "enum": list(APPLY_PATHS)}}, **_DRY),
    critical=_always("makes every staged change live on the firewall"),
)
async def _apply(fw: Firewall, a: dict[str, Any], dry: bool) -> Result:
    modules = a.get("modules") or ["alias", "filter"]
    res = Result()
    others = [m for m in modules if m not in ("alias", "filter")]
    if others:
        res = await fw.apply(others, dry_run=dry)
    if "filter" in modules:
        safe = await fw.safe_apply(dry_run=dry, aliases="alias" in modules)
        res.changes += safe.changes
        res.notes += safe.notes
        res.data.update(safe.data)
    elif "alias" in modules:
        res.changes += (await fw.apply(["alias"], dry_run=dry)).changes
    return res


@_tool(
    "opnsense.block_ip",
    "Block an IP address or network at the firewall (alias fazai_block + its block rule, "
    "created on first use; "
    "runtime add, no reload). ttl_s makes it temporary.",
    "changes_state",
    _schema(["ip", "reason"], ip=_STR, reason=_STR, ttl_s={"type": "number"}, interface=_STR, **_DRY),
)
async def _block_ip(fw: Firewall, a: dict[str, Any], dry: bool) -> Result:
    return await fw.block_ip(
        a["ip"], a["reason"], a.get("ttl_s"), interface=a.get("interface", "wan"), dry_run=dry
    )


@_tool(
    "opnsense.unblock_ip",
    "Remove an IP/network from fazai_block.",
    "changes_state",
    _schema(["ip"], ip=_STR, **_DRY),
)
async def _unblock_ip(fw: Firewall, a: dict[str, Any], dry: bool) -> Result:
    return await fw.unblock_ip(a["ip"], dry_run=dry)


@_tool(
    "opnsense.list_blocks",
    "Addresses blocked in fazai_block, with reason and expiry.",
    "read_only",
    _schema([]),
)
async def _list_blocks(fw: Firewall, a: dict[str, Any], dry: bool) -> dict[str, Any]:
    return {"blocks": await fw.list_blocks()}


@_tool(
    "opnsense.query_alerts",
    "Newest Suricata IDS alerts (signature, sid, source/destination, action).",
    "read_only",
    _schema([], limit={"type": "integer"}, search=_STR),
)
async def _query_alerts(fw: Firewall, a: dict[str, Any], dry: bool) -> dict[str, Any]:
    alerts = await fw.query_alerts(a.get("limit", 50), a.get("search", ""))
    return {"alerts": [x.event_data() for x in alerts]}


@_tool(
    "opnsense.ids_rule_action",
    "Set an installed IDS rule (sid) to alert or drop, enabled or not. Reload rules to make it live.",
    "destructive",  # opens traffic / goes live: always asks, never covered by --yes
    _schema(
        ["sid", "action"],
        sid={"type": "integer"},
        action={"type": "string", "enum": ["alert", "drop"]},
        enabled={"type": "boolean"},
        **_DRY,
    ),
)
async def _ids_rule_action(fw: Firewall, a: dict[str, Any], dry: bool) -> Result:
    return await fw.ids_rule_action(a["sid"], a["action"], a.get("enabled", True), dry_run=dry)


@_tool(
    "opnsense.ensure_host_override",
    "Create or update an Unbound DNS host override hostname.domain → IP. Apply with modules=['unbound'].",
    "changes_state",
    _schema(
        ["hostname", "domain", "server"],
        hostname=_STR,
        domain=_STR,
        server=_STR,
        rr={"type": "string", "enum": ["A", "AAAA"]},
        **_DRY,
    ),
)
async def _ensure_host_override(fw: Firewall, a: dict[str, Any], dry: bool) -> Result:
    return await fw.ensure_host_override(
        a["hostname"], a["domain"], a["server"], a.get("rr", "A"), dry_run=dry
    )


@_tool(
    "opnsense.backup",
    "Download config.xml and keep it (time + SHA-256) on this machine.",
    "read_only",
    _schema([], note=_STR),
)
async def _backup(fw: Firewall, a: dict[str, Any], dry: bool) -> Result:
    return await fw.backup(a.get("note", ""))


@_tool(
    "opnsense.system",
    "System readings: interfaces, gateways, services, resources.",
    "read_only",
    _schema([], what={"type": "string", "enum": ["interfaces", "gateways", "services", "resources"]}),
)
async def _system(fw: Firewall, a: dict[str, Any], dry: bool) -> dict[str, Any]:
    what = a.get("what", "gateways")
    readers = {
        "interfaces": fw.interfaces,
        "gateways": fw.gateways,
        "services": fw.services,
        "resources": fw.resources,
    }
    return {what: await readers[what]()}


TOOLS: list[ToolDef] = [
    _status,
    _list_aliases,
    _ensure_alias,
    _delete_alias,
    _list_rules,
    _ensure_rule,
    _set_rule_enabled,
    _delete_rule,
    _apply,
    _block_ip,
    _unblock_ip,
    _list_blocks,
    _query_alerts,
    _ids_rule_action,
    _ensure_host_override,
    _backup,
    _system,
]
"""Every built-in OPNsense tool, in prompt order."""
TOOLS += READ_TOOLS
TOOLS += OPS_TOOLS


def get_tool(name: str) -> ToolDef:
    """The tool called ``name`` (KeyError listing the names otherwise)."""
    for t in TOOLS:
        if t.name == name:
            return t
    raise KeyError(f"no OPNsense tool {name!r}; known: {', '.join(t.name for t in TOOLS)}")
