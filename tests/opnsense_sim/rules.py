"""Filter rules as core has them per version: the full field set, ``searchRule``'s interface views,
``getInterfaceList`` and the model-level validations of ``Filter.php`` (written from reading
opnsense/core at 25.1, 25.7, 26.1, 26.1.11 and 26.7; no code copied)."""

from __future__ import annotations

import re
from typing import Any

from .models import F, add_msg, is_ip, is_net, opts

Version = tuple[int, int, int]  # (major, minor, patch)

PRIOS = opts(*(f"{n}" for n in range(8)))
TCP_FLAGS = opts("syn", "ack", "fin", "rst", "psh", "urg", "ece", "cwr")
PORT_PROTOS = ("TCP", "UDP", "TCP/UDP")
# Fields that only make sense for TCP (Filter.php: "Invalid option for other than TCP protocol choices.")
TCP_ONLY = (
    "statetimeout",
    "max-src-conn",
    "tcpflags1",
    "tcpflags2",
    "max-src-conn-rate",
    "max-src-conn-rates",
    "overload",
)
PORT_RE = re.compile(r"^(\d{1,5}|\d{1,5}[-:]\d{1,5}|[a-zA-Z][a-zA-Z0-9_-]*)$")


def rule_fields(
    version: Version, ifaces: tuple[tuple[str, str], ...], protos: tuple[tuple[str, str], ...]
) -> dict[str, F]:
    """Every field of ``rules.rule`` in ``Filter.xml`` of this version (47 in 25.1 … 56 in 26.7)."""
    series = version[:2]
    directions = opts("in=In", "out=Out", *(["any=Both"] if series >= (26, 1) else []))
    f: dict[str, F] = {
        "enabled": F("bool", "1"),
        "statetype": F("option", "keep", opts("keep", "sloppy", "modulate", "synproxy", "none"), True),
        "state-policy": F("option", "", opts("if-bound", "floating")),
        "sequence": F("int", "1"),
    }
    if series >= (25, 7):
        f["sort_order"] = F("volatile")
        f["prio_group"] = F("volatile")
    f |= {
        "action": F("option", "pass", opts("pass=Pass", "block=Block", "reject=Reject"), True),
        "quick": F("bool", "1"),
        "interfacenot": F("bool", "0"),
        "interface": F("multi", "", ifaces),
        "direction": F("option", "in", directions, True),
        "ipprotocol": F("option", "inet", opts("inet=IPv4", "inet6=IPv6", "inet46=IPv4+IPv6"), True),
        "protocol": F("option", "any", protos, True),
    }
    if series >= (25, 7):
        f["icmptype"] = F("multi", "", opts("echoreq", "echorep", "unreach", "timex", "paramprob"))
    if series >= (26, 1):
        f["icmp6type"] = F("multi", "", opts("echoreq", "echorep", "unreach", "toobig", "timex"))
    f |= {
        "source_net": F("netalias", "any"),
        "source_not": F("bool", "0"),
        "source_port": F(),
        "destination_net": F("netalias", "any"),
        "destination_not": F("bool", "0"),
        "destination_port": F(),
    }
    if series >= (26, 1):
        f["divert-to"] = F()
    f |= {
        "gateway": F(),
        "replyto": F(),
        "disablereplyto": F("bool", "0"),
        "log": F("bool", "0"),
        "allowopts": F("bool", "0"),
        "nosync": F("bool", "0"),
        "nopfsync": F("bool", "0"),
        "statetimeout": F("optint"),
    }
    if series >= (26, 1):
        f |= {"udp-first": F("optint"), "udp-multiple": F("optint"), "udp-single": F("optint")}
    for name in ("max-src-nodes", "max-src-states", "max-src-conn", "max", "max-src-conn-rate"):
        f[name] = F("optint")
    f["max-src-conn-rates"] = F("optint")
    f["overload"] = F()
    f["adaptivestart"] = F("optint")
    f["adaptiveend"] = F("optint")
    f |= {
        "prio": F("option", "", PRIOS),
        "set-prio": F("option", "", PRIOS),
        "set-prio-low": F("option", "", PRIOS),
    }
    f |= {
        "tag": F(),
        "tagged": F(),
        "tcpflags1": F("multi", "", TCP_FLAGS),
        "tcpflags2": F("multi", "", TCP_FLAGS),
    }
    if series >= (26, 7):
        f["tcpflags_any"] = F("bool", "0")
    f |= {"categories": F(), "sched": F(), "tos": F(), "shaper1": F(), "shaper2": F(), "description": F()}
    return f


def _ifs(item: dict[str, str]) -> list[str]:
    return [i for i in item.get("interface", "").split(",") if i]


def rule_visible(version: Version, item: dict[str, str], has_param: bool, wanted: list[str]) -> bool:
    """Whether ``searchRule`` lists ``item`` for this ``interface`` request (per core version).

    ``has_param``: the request carries ``interface`` at all; ``wanted``: its non-empty parts.
    """
    series = version[:2]
    rule_ifs = _ifs(item)
    inverted = item.get("interfacenot") == "1"
    if series <= (25, 1):  # a plain model search: `interface` is not a filter
        return True
    if series == (25, 7):
        if not wanted:  # missing or empty: the floating view
            return len(rule_ifs) != 1
        return len(rule_ifs) == 1 and bool(set(rule_ifs) & set(wanted))
    new_logic = series >= (26, 7) or version >= (26, 1, 11)
    if series == (26, 1) and version[2] == 0:
        has_param = True  # 26.1: an absent and an empty `interface` both mean "floating"
    if not has_param:
        return True  # 26.1.1+: no parameter → every rule
    if new_logic:
        if not rule_ifs:
            return True
        if inverted:
            return not set(rule_ifs) & set(wanted)
        if not wanted:
            return len(rule_ifs) != 1
        return bool(set(rule_ifs) & set(wanted))
    if not wanted:
        return len(rule_ifs) != 1 or inverted
    if inverted:
        return False
    return bool(set(rule_ifs) & set(wanted)) and len(wanted) == len(rule_ifs)


def interface_list(
    version: Version, items: list[dict[str, str]], ifaces: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    """``firewall/filter/getInterfaceList`` (25.7+): floating / groups / interfaces selector items."""
    series = version[:2]
    out: dict[str, Any] = {
        "floating": {"label": "Floating", "icon": "fa fa-layer-group text-primary", "items": []},
        "groups": {"label": "Groups", "icon": "fa fa-sitemap text-warning", "items": []},
        "interfaces": {"label": "Interfaces", "icon": "fa fa-ethernet text-info", "items": []},
    }
    if series >= (26, 7):  # no counts; the floating view is `__floating`, plus an "any" entry
        out["any"] = {"label": "Any", "icon": "fa fa-globe-europe fa-fw", "items": []}
        out["floating"]["items"].append({"value": "__floating", "label": "Floating", "type": "floating"})
        for key, label in ifaces:
            out["interfaces"]["items"].append({"value": key, "label": label, "type": "interface"})
        out["any"]["items"].append({"value": "", "label": "Any", "type": "any"})
        return out
    counts: dict[str, int] = {}
    for item in items:
        ifs = _ifs(item)
        floating = len(ifs) != 1 or (series >= (26, 1) and item.get("interfacenot") == "1")
        key = "" if floating else ifs[0]
        counts[key] = counts.get(key, 0) + 1
    out["floating"]["items"].append(
        {"value": "", "label": "Any", "count": counts.get("", 0), "type": "floating"}
    )
    for key, label in ifaces:
        out["interfaces"]["items"].append(
            {"value": key, "label": label, "count": counts.get(key, 0), "type": "interface"}
        )
    return out


def _net_family(value: str) -> str | None:
    if is_ip(value) or is_net(value):
        return "inet6" if ":" in value else "inet"
    return None


def validate_rule(
    item: dict[str, str], v: dict[str, Any], k: str, net_ok: Any, *, snat: bool = False
) -> None:
    """The checks of ``Filter.php::performValidation`` and the field types, as core words them."""
    seq = item.get("sequence", "1")
    if not seq.isdigit() or not 1 <= int(seq) <= 999999:
        add_msg(v, f"{k}.sequence", "Sequence shall be between 1 and 999999.")
    proto = item.get("protocol", "any")
    ipproto = item.get("ipprotocol", "inet")
    for side in ("source", "destination"):
        raw = item.get(f"{side}_net", "")
        nets = [n for n in raw.split(",") if n]
        for n in nets:
            if not net_ok(n):
                add_msg(v, f"{k}.{side}_net", f"{n} is not a valid {side} IP address or alias.")
        if "any" in nets and len(nets) > 1:
            add_msg(v, f"{k}.{side}_net", "Any can not be combined with other aliases")
        fam = _net_family(raw)
        if fam and fam != ipproto:  # core compares literally: inet46 with an address fails too
            add_msg(
                v,
                f"{k}.{side}_net",
                f"{side.capitalize()} address type should match selected TCP/IP protocol version.",
            )
        port = item.get(f"{side}_port", "")
        if port and proto not in PORT_PROTOS:
            add_msg(
                v, f"{k}.{side}_port", f"{side.capitalize()} ports are only valid for tcp or udp type rules."
            )
        elif port and not PORT_RE.match(port):
            add_msg(v, f"{k}.{side}_port", "Please specify a valid port number, range or alias.")
        if len(nets) > 1 and item.get(f"{side}_not") == "1":
            plural = "sources" if side == "source" else "destinations"
            add_msg(
                v,
                f"{k}.{side}_not",
                f"Inverting {plural} is only allowed for single targets to avoid mis-interpretations",
            )
    if snat:
        return
    if item.get("interfacenot") == "1" and len(_ifs(item)) != 1:
        add_msg(
            v,
            f"{k}.interfacenot",
            "Inverting interfaces is only allowed for single targets to avoid mis-interpretations",
        )
    if item.get("icmptype") and proto != "ICMP":
        add_msg(v, f"{k}.icmptype", "Option only applies to ICMP packets")
    if item.get("icmp6type") and proto != "IPV6-ICMP":
        add_msg(v, f"{k}.icmp6type", "Option only applies to IPV6-ICMP packets")
    if proto not in ("TCP", "TCP/UDP"):
        for name in TCP_ONLY:
            if item.get(name):
                add_msg(v, f"{k}.{name}", "Invalid option for other than TCP protocol choices.")
