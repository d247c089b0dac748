"""Read-only operator views of one firewall: the firewall log, pf states, gateways, CARP, DHCP leases,
ARP/NDP, WireGuard status and firmware status. Nothing here changes the firewall."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fazai.opnsense import errors as E

if TYPE_CHECKING:
    from fazai.opnsense.firewall import Firewall

_MAX_ROWS = 500  # what one read returns at most (a model reads the result)


def _rows(reply: Any) -> list[dict[str, Any]]:
    return list(reply.get("rows", [])) if isinstance(reply, dict) else []


async def firewall_log(
    fw: Firewall, limit: int = 100, action: str = "", search: str = ""
) -> list[dict[str, Any]]:
    """Newest filterlog lines (``diagnostics/firewall/log``, GET), optionally only ``action``
    (pass/block/reject) and lines containing ``search`` (an address, port or rule label)."""
    limit = max(1, min(limit, _MAX_ROWS))
    # Fetch more than asked when filtering here: the endpoint itself has no filter.
    want = limit if not (action or search) else min(limit * 10, 5000)
    reply = await fw.client.get("diagnostics/firewall/log", params={"limit": want})
    lines = [r for r in reply if isinstance(r, dict)] if isinstance(reply, list) else []
    needle = search.lower()
    out = [
        r
        for r in lines
        if (not action or r.get("action") == action)
        and (not needle or needle in " ".join(str(v) for v in r.values()).lower())
    ]
    return out[:limit]


async def states(fw: Firewall, search: str = "", limit: int = 100) -> dict[str, Any]:
    """pf states (``diagnostics/firewall/queryStates``, POST-only): rows and the total."""
    limit = max(1, min(limit, _MAX_ROWS))
    reply = await fw.client.search(
        "diagnostics/firewall/queryStates", {"current": 1, "rowCount": limit, "searchPhrase": search}
    )
    return {"rows": _rows(reply), "total": reply.get("total") if isinstance(reply, dict) else 0}


async def dhcp_leases(fw: Firewall, search: str = "") -> dict[str, Any]:
    """DHCPv4 leases from whichever server answers (Kea, Dnsmasq, the legacy ISC plugin)."""
    out: dict[str, Any] = {"leases": [], "sources": [], "notes": []}
    body = {"current": 1, "rowCount": _MAX_ROWS, "searchPhrase": search}
    for source, path in (
        ("kea", "kea/leases4/search"),
        ("dnsmasq", "dnsmasq/leases/search"),
        ("isc", "dhcpv4/leases/searchLease"),
    ):
        try:
            rows = _rows(await fw.client.search(path, body))
        except (E.EndpointNotFound, E.PermissionDenied) as e:
            if isinstance(e, E.PermissionDenied):
                out["notes"].append(f"{path}: the API user lacks the privilege")
            continue
        out["sources"].append(source)
        out["leases"] += [{**r, "source": source} for r in rows]
    return out


async def arp(fw: Firewall, search: str = "", ipv6: bool = False) -> list[dict[str, Any]]:
    """The ARP table (or the IPv6 neighbour table with ``ipv6``) with interface descriptions."""
    path = "diagnostics/interface/searchNdp" if ipv6 else "diagnostics/interface/searchArp"
    return _rows(await fw.client.search(path, {"current": 1, "rowCount": _MAX_ROWS, "searchPhrase": search}))


async def wireguard_status(fw: Firewall) -> list[dict[str, Any]]:
    """WireGuard interfaces and peers with handshake age and ``peer-status`` (``wireguard/service/show``)."""
    return _rows(await fw.client.search("wireguard/service/show", {"current": 1, "rowCount": _MAX_ROWS}))


async def gateway_status(fw: Firewall) -> list[dict[str, Any]]:
    """Gateways with loss, delay and status (``routes/gateway/status``)."""
    return await fw.gateways()


async def firmware(fw: Firewall) -> dict[str, Any]:
    """Firmware status as last checked on the firewall (no update probe is started)."""
    fs = await fw.firmware_status()
    keep = ("status", "status_msg", "product_version", "needs_reboot", "upgrade_packages", "updates")
    product = fs.get("product") or {} if isinstance(fs, dict) else {}
    return {k: fs.get(k) for k in keep if isinstance(fs, dict) and k in fs} | {
        "version": product.get("product_version")
    }


async def carp_status(fw: Firewall) -> dict[str, Any]:
    """CARP / virtual IP status (``diagnostics/interface/getVipStatus``): each VIP with its
    interface, vhid, subnet and state (MASTER, BACKUP, INIT, DISABLED), the node's demotion, whether
    CARP is allowed, maintenance mode, and one line that says it."""
    reply = await fw.client.get("diagnostics/interface/getVipStatus")
    rows = _rows(reply)
    carp = (reply.get("carp") if isinstance(reply, dict) else None) or {}
    keep = ("interface", "vhid", "subnet", "mode", "status", "advbase", "advskew")
    vips = [{k: r.get(k) for k in keep} for r in rows]
    carps = [v for v in vips if v["mode"] == "carp"]
    states = sorted({str(v["status"]) for v in carps})
    maintenance = bool(carp.get("maintenancemode"))
    allowed = str(carp.get("allow", "1")) == "1"
    if not carps:
        line = "no CARP virtual IPs on this firewall"
    else:
        masters = sum(1 for v in carps if v["status"] == "MASTER")
        line = f"MASTER for {masters} of {len(carps)} CARP VIPs ({', '.join(states)})"
    line += "; maintenance mode ON" if maintenance else ""
    line += "; CARP disabled on this node" if not allowed else ""
    demotion = str(carp.get("demotion", "0"))
    line += f"; demotion {demotion}" if demotion not in ("", "0") else ""
    return {
        "summary": line,
        "vips": vips,
        "maintenance_mode": maintenance,
        "carp_allowed": allowed,
        "demotion": demotion,
        "message": str(carp.get("status_msg") or "").replace("<br />", " "),
    }
