"""Addresses a block must never cover: the firewall's own API address (a hostname is resolved),
the address the firewall sees FazAI (and the operator's SSH client) come from, the gateways, and
the configured never-block list (``[opnsense] never_block``)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from fazai.opnsense import errors as E

if TYPE_CHECKING:
    from fazai.opnsense.firewall import Firewall

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Protected:
    """One address or network a block must not contain, and why."""

    net: Net
    why: str


def _net(text: str) -> Net | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (itself when it is a literal address)."""
    if _net(host) is not None:
        return [host]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise ValueError(
            f"cannot resolve the firewall's host name {host!r} ({e}); blocks are refused while the "
            "firewall's own address is unknown. Fix DNS or register the firewall by IP address."
        ) from e
    return sorted({str(i[4][0]) for i in infos})


def local_source(address: str, port: int) -> str | None:
    """The local address this host uses to reach ``address`` (what the firewall sees, without NAT)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((address, port))  # UDP connect: picks the route and source, sends nothing
            return str(s.getsockname()[0])
    except OSError:
        return None


def ssh_client_address(environ: dict[str, str] | None = None) -> str | None:
    """The operator's address when FazAI runs in an SSH session (``SSH_CLIENT``/``SSH_CONNECTION``)."""
    env = os.environ if environ is None else environ
    for var in ("SSH_CONNECTION", "SSH_CLIENT"):
        first = (env.get(var) or "").split(" ")[0]
        if first and _net(first) is not None:
            return first
    return None


async def protected(
    fw: Firewall, never_block: list[str] | tuple[str, ...] = ()
) -> tuple[list[Protected], list[str]]:
    """The protected networks of this firewall, and notes on what could not be read."""
    out: list[Protected] = []
    notes: list[str] = []
    url = urlparse(fw.client.url)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    for addr in await resolve_host(host, port):
        label = "the firewall's own API address" + (f" ({host})" if addr != host else "")
        out.append(Protected(ipaddress.ip_network(addr), f"{label} {addr}"))
        src = local_source(addr, port)
        if src:
            out.append(
                Protected(ipaddress.ip_network(src), f"the address FazAI reaches the firewall from ({src})")
            )
    op = ssh_client_address()
    if op:
        out.append(Protected(ipaddress.ip_network(op), f"the operator's SSH client address {op}"))
    try:
        gateways = await fw.gateways()
    except E.OPNsenseError as e:
        gateways = []
        notes.append(f"gateways not checked (routes/gateway/status: {e.__class__.__name__})")
    for gw in gateways:
        for key in ("address", "monitor"):
            n = _net(str(gw.get(key) or ""))
            if n is not None:
                out.append(Protected(n, f"gateway {gw.get('name', '?')} {key} {n.network_address}"))
    for entry in never_block:
        n = _net(entry)
        if n is None:
            raise ValueError(f"[opnsense] never_block has {entry!r}, which is not an address or network")
        out.append(Protected(n, f"{n} from the never-block list ([opnsense] never_block)"))
    return out, notes


def check(net: Net, items: list[Protected]) -> None:
    """Raise ValueError when ``net`` contains (or overlaps) a protected address."""
    for p in items:
        if p.net.version == net.version and net.overlaps(p.net):
            raise ValueError(
                f"refusing to block {net}: it contains {p.why}. Blocking it would cut off the firewall's "
                "management or routing; block a narrower address, or edit [opnsense] never_block."
            )


def as_dicts(items: list[Protected]) -> list[dict[str, Any]]:
    """Plain rows for ``--json`` output."""
    return [{"network": str(p.net), "why": p.why} for p in items]
