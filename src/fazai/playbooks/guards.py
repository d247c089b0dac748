"""Guard rails of playbook actions: addresses never acted on, playbook exceptions with expiry,
and per-playbook rate limits.

Never blocked, whatever a playbook says: loopback, link-local, multicast and unspecified addresses,
this machine's own addresses and default gateways, and what ``[playbooks]`` lists as management
networks and operator addresses.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fazai.playbooks.schema import Playbook

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def local_gateways(route_file: Path = Path("/proc/net/route")) -> list[str]:
    """The default gateways of this machine (IPv4, from the kernel's routing table)."""
    out = []
    try:
        for line in route_file.read_text().splitlines()[1:]:
            cols = line.split()
            if len(cols) > 2 and cols[1] == "00000000" and cols[2] != "00000000":
                out.append(socket.inet_ntoa(struct.pack("<L", int(cols[2], 16))))
    except (OSError, ValueError):
        pass
    return out


def local_addresses() -> list[str]:
    """This machine's addresses as its hostname resolves (best effort, no network)."""
    try:
        return sorted({ai[4][0] for ai in socket.getaddrinfo(socket.gethostname(), None)})
    except OSError:
        return []


@dataclass
class Protected:
    """Addresses no playbook may block, each with why."""

    entries: list[tuple[IPNet, str]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        *,
        management: Iterable[str] = (),
        operators: Iterable[str] = (),
        gateways: Iterable[str] = (),
        detect_local: bool = True,
    ) -> Protected:
        """From configured lists, plus (``detect_local``) this machine's gateways and addresses."""
        p = cls()
        for nets, why in ((management, "a management network"), (operators, "an operator's address"),
                          (gateways, "a gateway")):  # fmt: skip
            for n in nets:
                p.add(n, why)
        if detect_local:
            for gw in local_gateways():
                p.add(gw, "this machine's default gateway")
            for a in local_addresses():
                p.add(a, "one of this machine's addresses")
        return p

    def add(self, net: str, why: str) -> None:
        """Protect ``net`` (an address or network); a bad value raises ValueError naming it."""
        try:
            self.entries.append((ipaddress.ip_network(net, strict=False), why))
        except ValueError as e:
            raise ValueError(f"{net!r} ({why}) is not an address or network") from e

    def reason(self, ip: str) -> str | None:
        """Why ``ip`` must never be blocked, or None."""
        try:
            net = ipaddress.ip_network(ip, strict=False)
        except ValueError:
            return f"{ip!r} is not an IP address"
        addr = net.network_address
        for flag, why in (("is_loopback", "loopback"), ("is_link_local", "link-local"),
                          ("is_multicast", "multicast"), ("is_unspecified", "unspecified")):  # fmt: skip
            if getattr(addr, flag):
                return f"{ip} is a {why} address"
        for prot, why in self.entries:
            if prot.version == net.version and (net.subnet_of(prot) or prot.subnet_of(net)):  # type: ignore[arg-type]
                return f"{ip} is {why} ({prot})"
        return None


def exception_for(pb: Playbook, ip: str, now: datetime | None = None) -> str | None:
    """The playbook exception covering ``ip`` that has not expired, as a sentence; or None."""
    now = now or datetime.now(UTC)
    try:
        addr = ipaddress.ip_network(ip, strict=False)
    except ValueError:
        return None
    for ex in pb.exceptions:
        net = ipaddress.ip_network(ex.cidr)
        if net.version != addr.version or not addr.subnet_of(net):  # type: ignore[arg-type]
            continue
        if ex.until is not None and ex.until <= now:
            continue  # expired: no longer protects
        until = f" until {ex.until.isoformat()}" if ex.until else ""
        why = f": {ex.reason}" if ex.reason else ""
        return f"{ip} is excepted by playbook {pb.name!r} ({ex.cidr}{until}{why})"
    return None


class RateLimiter:
    """Sliding-window run counts per playbook."""

    def __init__(self, clock=time.time):  # type: ignore[no-untyped-def]
        self.clock = clock
        self.starts: dict[str, deque[float]] = {}

    def seed(self, playbook: str, times: Iterable[float]) -> None:
        """Start times of earlier runs (from the store, after a restart)."""
        self.starts.setdefault(playbook, deque()).extend(sorted(times))

    def check(self, pb: Playbook) -> str | None:
        """None (and the run counted) when ``pb`` may run now, else why not."""
        now = self.clock()
        q = self.starts.setdefault(pb.name, deque())
        while q and q[0] <= now - pb.rate_limit.per:
            q.popleft()
        if len(q) >= pb.rate_limit.max_runs:
            return (
                f"rate limit: {pb.name!r} ran {len(q)} times in the last {pb.rate_limit.per:g}s "
                f"(rate_limit.max_runs {pb.rate_limit.max_runs})"
            )
        q.append(now)
        return None
