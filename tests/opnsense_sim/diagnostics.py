"""Read endpoints of the simulated firewall that operators use: ARP/NDP, interface names and
routes, the firewall log and states, DHCP leases (Kea, Dnsmasq), WireGuard status, installed IDS
rules and the Unbound model ``get`` (shapes from the reference and opnsense/core's controllers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .app import Req, Simulator

IF_NAMES = {"vtnet0": "WAN", "vtnet1": "LAN", "vtnet2": "DMZ", "wg0": "WireGuard"}
ARP = [
    {
        "mac": "52:54:00:12:34:56",
        "ip": "10.0.0.20",
        "intf": "vtnet1",
        "expired": False,
        "expires": 1180,
        "permanent": False,
        "type": "ethernet",
        "manufacturer": "",
        "hostname": "ws20",
    },
    {
        "mac": "52:54:00:ab:cd:ef",
        "ip": "192.0.2.254",
        "intf": "vtnet0",
        "expired": False,
        "expires": 900,
        "permanent": False,
        "type": "ethernet",
        "manufacturer": "",
        "hostname": "",
    },
]
NDP = [
    {"mac": "52:54:00:12:34:56", "ip": "fe80::5054:ff:fe12:3456%vtnet1", "intf": "vtnet1", "manufacturer": ""}
]
LEASES = [
    {
        "address": "10.0.0.20",
        "hwaddr": "52:54:00:12:34:56",
        "hostname": "ws20",
        "if": "vtnet1",
        "valid_lifetime": "3600",
        "expire": "1750003600",
        "state": "0",
        "client_id": "",
    },
]


def search_records(req: Req, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``searchRecordsetBase``: paging and phrase from the POST body only."""
    phrase = str(req.post.get("searchPhrase", "") or "").lower()
    if phrase:
        rows = [r for r in rows if phrase in " ".join(str(v) for v in r.values()).lower()]
    count = int(req.post.get("rowCount", 9999) or 9999)
    current = int(req.post.get("current", 1) or 1)
    sel = rows if count < 0 else rows[(current - 1) * count : current * count]
    return {"total": len(rows), "rowCount": len(sel), "current": current, "rows": sel}


def register(sim: Simulator, add: Callable[..., None]) -> None:
    """Add the read endpoints to the route table (``add(path, fn, lo, hi, since, until)``)."""

    def with_descr(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "intf_description": IF_NAMES.get(r["intf"], "")} for r in rows]

    add("diagnostics/interface/getInterfaceNames", lambda req: IF_NAMES)
    add("diagnostics/interface/getArp", lambda req: with_descr(ARP))
    add("diagnostics/interface/searchArp", lambda req: search_records(req, with_descr(ARP)))
    add("diagnostics/interface/getNdp", lambda req: with_descr(NDP))
    add("diagnostics/interface/searchNdp", lambda req: search_records(req, with_descr(NDP)))
    add(
        "diagnostics/interface/getRoutes",
        lambda req: [
            {
                "proto": "ipv4",
                "destination": "default",
                "gateway": "192.0.2.254",
                "flags": "UGS",
                "use": "1042",
                "mtu": "1500",
                "netif": "vtnet0",
                "expire": "",
                "intf_description": "WAN",
            },
        ],
    )

    def firewall_log(req: Req) -> Any:
        if req.is_post:  # GET only; a POST gets an empty body
            return None
        limit = int(req.query.get("limit", 1000) or 1000)
        return list(reversed(sim.filterlog))[:limit]

    add("diagnostics/firewall/log", firewall_log)

    def query_states(req: Req) -> Any:
        if not req.is_post:
            return {"rows": [], "rowCount": 0, "total": 0, "current": 1}
        rows = [
            {
                "id": f"{i:016x}",
                "iface": "vtnet0",
                "interface": "wan",
                "proto": "tcp",
                "ipproto": "inet",
                "direction": "in",
                "src_addr": ip,
                "src_port": str(port),
                "dst_addr": "192.0.2.1",
                "dst_port": "443",
                "nat_addr": "",
                "nat_port": "",
                "gateway": "",
                "state": "ESTABLISHED:ESTABLISHED",
                "age": "00:00:05",
                "expires": "24:00:00",
                "pkts": [10, 8],
                "bytes": [2048, 4096],
                "label": "",
                "descr": "",
                "flags": [],
            }
            for i, (ip, port) in enumerate(sorted(sim.states))
        ]
        return search_records(req, rows)

    add("diagnostics/firewall/queryStates", query_states)

    def kea_leases(req: Req) -> Any:
        rows = [
            {**r, "if_descr": IF_NAMES.get(r["if"], ""), "if_name": "lan", "is_reserved": ""} for r in LEASES
        ]
        return {**search_records(req, rows), "interfaces": {"lan": "LAN"}}

    add("kea/leases4/search", kea_leases)
    add(
        "dnsmasq/leases/search",
        lambda req: {**search_records(req, []), "interfaces": {}},
        since=(25, 1),
    )

    def wg_show(req: Req) -> Any:
        rows: list[dict[str, Any]] = []
        for srv in sim.cols["server"].items.values():
            ifname = f"wg{srv.get('instance') or 0}"
            rows.append(
                {
                    "if": ifname,
                    "type": "interface",
                    "public-key": srv.get("pubkey", ""),
                    "listen-port": srv.get("port", ""),
                    "name": srv.get("name", ""),
                    "ifname": ifname,
                }
            )
        for peer in sim.cols["client"].items.values():
            rows.append(
                {
                    "if": "wg0",
                    "type": "peer",
                    "public-key": peer.get("pubkey", ""),
                    "endpoint": peer.get("serveraddress", ""),
                    "allowed-ips": peer.get("tunneladdress", ""),
                    "latest-handshake": 0,
                    "transfer-rx": 0,
                    "transfer-tx": 0,
                    "name": peer.get("name", ""),
                    "ifname": "wg0",
                    "latest-handshake-age": None,
                    "peer-status": "offline",
                }
            )
        return search_records(req, rows)

    add("wireguard/service/show", wg_show)

    def installed_rules(req: Req) -> Any:
        if not req.is_post:
            return []
        rows = [
            {
                "sid": sid,
                "rev": 1,
                "gid": 1,
                "msg": r["msg"],
                "reference": "",
                "source": "emerging-scan.rules",
                "enabled": r["enabled"],
                "action": r["action"],
                "status": "enabled" if r["enabled"] else "disabled",
                "enabled_default": 1,
                "action_default": "alert",
                "matched_policy": "",
                "classtype": r["classtype"],
            }
            for sid, r in sorted(sim.ids_rules.items())
        ]
        return search_records(req, rows)

    add("ids/settings/searchInstalledRules", installed_rules)

    def unbound_model_get(req: Req) -> Any:
        hosts, lists = sim.cols["host"], sim.cols["blocklist"]
        return {
            "unbound": {
                "general": {"enabled": "1", "port": "53"},
                "dnsbl": {"blocklist": {u: lists.render_get(i) for u, i in lists.items.items()}},
                "hosts": {"host": {u: hosts.render_get(i) for u, i in hosts.items.items()}},
            }
        }

    if sim.version >= (26, 1):  # ≤ 25.7 has the legacy settings container (handlers.unbound_get)
        add("unbound/settings/get", unbound_model_get)
