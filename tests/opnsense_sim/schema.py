"""The simulated models per version: which collections exist and their fields (from core's model XML)."""

from __future__ import annotations

from . import rules as rules_mod
from .models import Collection, F, opts

ALIAS_TYPES = opts(
    "host=Host(s)",
    "network=Network(s)",
    "port=Port(s)",
    "url=URL (IPs)",
    "urltable=URL Table (IPs)",
    "geoip=GeoIP",
    "networkgroup=Network group",
    "mac=MAC address",
    "asn=BGP ASN",
    "dynipv6host=Dynamic IPv6 Host",
    "authgroup=OpenVPN group",
    "internal=Internal (automatic)",
    "external=External (advanced)",
    "urljson=URL Table in JSON format (IPs)",
)
IFACES = opts("lan=LAN", "wan=WAN", "opt1=DMZ")
_DIRS_ACTIONS = [(d, a) for d in ("in", "out") for a in ("block", "pass")]
ALIAS_STATS = (*(f"{d}_{a}_{u}" for d, a in _DIRS_ACTIONS for u in ("p", "b")), "eval_nomatch", "eval_match")
PROTOS = opts("any", "TCP/UDP", "TCP", "UDP", "ICMP", "IPV6-ICMP", "GRE", "ESP")


def new_collections(full: tuple[int, int, int]) -> dict[str, Collection]:
    """Fresh, empty models for this version."""
    version = full[:2]
    rule_fields = rules_mod.rule_fields(full, IFACES, PROTOS)
    rr = ["A", "AAAA", "MX", *(["TXT"] if version >= (26, 1) else [])]
    cols = {
        "alias": Collection(
            "alias",
            {
                "enabled": F("bool", "1"),
                "name": F(required=True),
                "type": F("option", "", ALIAS_TYPES, True),
                "path_expression": F(),
                "proto": F("multi", "", opts("IPv4", "IPv6")),
                "interface": F(),
                "counters": F("bool", "0"),
                "updatefreq": F(),
                "content": F("content"),
                "password": F(),
                "username": F(),
                "authtype": F("option", "", opts("Basic", "Bearer", "Header")),
                **({"expire": F("optint")} if version >= (25, 7) else {}),
                "categories": F(),
                "current_items": F("volatile"),
                "last_updated": F("volatile"),
                **({n: F("volatile") for n in ALIAS_STATS} if version >= (26, 1) else {}),
                "description": F(),
            },
            ("enabled", "name", "type", "description", "content"),
        ),
        "rule": Collection("rule", rule_fields, ("enabled", "sequence", "action", "description")),
        "snat": Collection(
            "rule",
            {
                "enabled": F("bool", "1"),
                "nonat": F("bool", "0"),
                "nosync": F("bool", "0"),
                "sequence": F("int", "1"),
                "interface": F("option", "wan", IFACES, True),
                "ipprotocol": F("option", "inet", opts("inet=IPv4", "inet6=IPv6"), True),
                "protocol": F("option", "any", PROTOS, True),
                "source_net": F("netalias", "any"),
                "source_not": F("bool", "0"),
                "source_port": F(),
                "destination_net": F("netalias", "any"),
                "destination_not": F("bool", "0"),
                "destination_port": F(),
                "target": F(),
                "target_port": F(),
                "staticnatport": F("bool", "0"),
                "log": F("bool", "0"),
                "categories": F(),
                "tag": F(),
                "tagged": F(),
                "description": F(),
            },
            ("enabled", "sequence", "interface", "description"),
        ),
        "one_to_one": Collection(
            "rule",
            {
                "enabled": F("bool", "1"),
                "log": F("bool", "0"),
                "sequence": F("int", "1"),
                "interface": F("option", "wan", IFACES, True),
                "type": F("option", "binat", opts("binat=BINAT", "nat=NAT"), True),
                "source_net": F("netalias", ""),
                "source_not": F("bool", "0"),
                "destination_net": F("netalias", "any"),
                "destination_not": F("bool", "0"),
                "external": F(),
                "natreflection": F("option", "", opts("enable=Enable", "disable=Disable")),
                "categories": F(),
                "description": F(),
            },
            ("enabled", "sequence", "external", "description"),
        ),
        "host": Collection(
            "host",
            {
                "enabled": F("bool", "1"),
                "hostname": F(),
                "domain": F(required=True),
                "rr": F("option", "A", opts(*rr), True),
                "mxprio": F(),
                "mx": F(),
                "server": F(),
                "description": F(),
            },
            ("enabled", "hostname", "domain", "rr", "server", "description"),
        ),
        "server": Collection(
            "server",
            {
                "enabled": F("bool", "1"),
                "name": F(required=True),
                "instance": F(),
                "pubkey": F(),
                "privkey": F(required=True),
                "port": F(),
                "mtu": F(),
                "dns": F(),
                "tunneladdress": F("list", ""),
                "disableroutes": F("bool", "0"),
                "gateway": F(),
                "peers": F("list", ""),
            },
            ("enabled", "name", "instance", "port", "tunneladdress"),
        ),
        "client": Collection(
            "client",
            {
                "enabled": F("bool", "1"),
                "name": F(required=True),
                "pubkey": F(required=True),
                "psk": F(),
                "tunneladdress": F("list", ""),
                "serveraddress": F(),
                "serverport": F(),
                "keepalive": F(),
                "servers": F("list", ""),
            },
            ("enabled", "name", "tunneladdress", "serveraddress"),
        ),
        "policy": Collection(
            "policy",
            {
                "enabled": F("bool", "1"),
                "prio": F("int", "0"),
                "action": F("multi", "", opts("disable=Disabled", "alert=Alert", "drop=Drop")),
                "rulesets": F("list", ""),
                "content": F("list", ""),
                "new_action": F(
                    "option",
                    "alert",
                    opts("default=Default", "alert=Alert", "drop=Drop", "disable=Disable"),
                    True,
                ),
                "description": F(required=True),
            },
            ("enabled", "prio", "description"),
        ),
    }
    if version >= (26, 1):
        cols["dnat"] = Collection(
            "rule",
            {
                "disabled": F("bool", "0"),
                "sequence": F("int", "1"),
                "interface": F("multi", "wan", IFACES),
                "ipprotocol": F("option", "inet", opts("inet=IPv4", "inet6=IPv6"), True),
                # ProtocolField with ChangeCase lower: "TCP" is stored (and read back) as "tcp".
                "protocol": F(
                    "option", "", tuple((k.lower(), v) for k, v in PROTOS if k != "any"), case="lower"
                ),
                "source.network": F("list", "any"),
                "source.port": F(),
                "source.not": F("bool", "0"),
                "destination.network": F("list", "any"),
                "destination.port": F(),
                "destination.not": F("bool", "0"),
                "target": F(required=True),
                "local-port": F(),
                "log": F("bool", "0"),
                "descr": F(),
            },
            ("disabled", "interface", "target", "descr"),
        )
        cols["blocklist"] = Collection(
            "blocklist",
            {
                "enabled": F("bool", "1"),
                "type": F(
                    "multi",
                    "",
                    opts("atf=Abuse.ch ThreatFox", "aa=AdAway", "ag=AdGuard", "hgz002=HaGeZi Pro"),
                ),
                "lists": F(),
                "allowlists": F(),
                "blocklists": F(),
                "wildcards": F(),
                "source_nets": F("list", ""),
                "address": F(),
                "nxdomain": F("bool", "0"),
                "description": F(),
            },
            ("enabled", "type", "description"),
        )
    return cols
