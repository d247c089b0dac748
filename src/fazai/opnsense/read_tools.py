"""Read-only operator tools (risk ``read_only``: the safety policy runs them without asking)."""

from __future__ import annotations

from typing import Any

from fazai.opnsense import reads
from fazai.opnsense.firewall import Firewall
from fazai.opnsense.tooldef import _STR, ToolDef, _schema, _tool

_LIMIT = {"type": "integer", "description": "most rows returned (1–500)"}


@_tool(
    "opnsense.firewall_log",
    "Newest firewall log lines (pf filterlog): action, interface, src/dst, ports, rule label.",
    "read_only",
    _schema([], limit=_LIMIT, action={"type": "string", "enum": ["pass", "block", "reject"]}, search=_STR),
)
async def _firewall_log(fw: Firewall, a: dict[str, Any], dry: bool) -> dict[str, Any]:
    return {
        "log": await reads.firewall_log(fw, a.get("limit", 100), a.get("action", ""), a.get("search", ""))
    }


@_tool(
    "opnsense.states",
    "Current pf states (connections): addresses, ports, state, age, packets.",
    "read_only",
    _schema([], search=_STR, limit=_LIMIT),
)
async def _states(fw: Firewall, a: dict[str, Any], dry: bool) -> dict[str, Any]:
    return await reads.states(fw, a.get("search", ""), a.get("limit", 100))


@_tool("opnsense.gateways", "Gateway status: online/offline, loss, delay.", "read_only", _schema([]))
async def _gateways(fw: Firewall, a: dict[str, Any], dry: bool) -> dict[str, Any]:
    return {"gateways": await reads.gateway_status(fw)}


@_tool(
    "opnsense.dhcp_leases",
    "DHCPv4 leases (Kea, Dnsmasq or ISC, whichever runs): address, MAC, hostname, interface.",
    "read_only",
    _schema([], search=_STR),
)
async def _dhcp_leases(fw: Firewall, a: dict[str, Any], dry: bool) -> dict[str, Any]:
    return await reads.dhcp_leases(fw, a.get("search", ""))


@_tool(
    "opnsense.arp",
    "ARP table (ipv6=true: NDP neighbours) with interface names and hostnames.",
    "read_only",
    _schema([], search=_STR, ipv6={"type": "boolean"}),
)
async def _arp(fw: Firewall, a: dict[str, Any], dry: bool) -> dict[str, Any]:
    return {"neighbours": await reads.arp(fw, a.get("search", ""), bool(a.get("ipv6", False)))}


@_tool(
    "opnsense.wireguard_status",
    "WireGuard interfaces and peers: endpoint, allowed IPs, last handshake, peer status.",
    "read_only",
    _schema([]),
)
async def _wireguard_status(fw: Firewall, a: dict[str, Any], dry: bool) -> dict[str, Any]:
    return {"wireguard": await reads.wireguard_status(fw)}


@_tool(
    "opnsense.firmware",
    "Firmware version and update status (no update check is started).",
    "read_only",
    _schema([]),
)
async def _firmware(fw: Firewall, a: dict[str, Any], dry: bool) -> dict[str, Any]:
    return {"firmware": await reads.firmware(fw)}


READ_TOOLS: list[ToolDef] = [
    _firewall_log,
    _states,
    _gateways,
    _dhcp_leases,
    _arp,
    _wireguard_status,
    _firmware,
]
"""The read-only operator tools, appended to :data:`fazai.opnsense.tools.TOOLS`."""
