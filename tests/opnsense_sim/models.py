"""Field specs, item rendering (get/search per version) and validation of the simulated models."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class F:
    """A model field. kind: text | bool | int | optint | option | multi | list | content | volatile |
    netalias (a comma list rendered as a plain string, like core's NetworkAliasField)."""

    kind: str = "text"
    default: str = ""
    options: tuple[tuple[str, str], ...] = ()  # (key, label)
    required: bool = False
    case: str = ""  # "lower": stored lower-cased (core's ChangeCase)


def opts(*pairs: str) -> tuple[tuple[str, str], ...]:
    """``opts("pass=Pass", "block")`` → (("pass","Pass"), ("block","block"))."""
    out = []
    for p in pairs:
        k, _, label = p.partition("=")
        out.append((k, label or k))
    return tuple(out)


@dataclass
class Collection:
    """One ArrayField of a model (aliases, rules, ...), items keyed by uuid, values raw strings."""

    key: str
    fields: dict[str, F]
    search_fields: tuple[str, ...]  # fixed field list of the ≤ 25.1 search
    items: dict[str, dict[str, str]] = field(default_factory=dict)

    def blank(self) -> dict[str, str]:
        return {n: f.default for n, f in self.fields.items()}

    def label(self, name: str, value: str) -> str:
        f = self.fields.get(name)
        if f is None or f.kind not in ("option", "multi"):
            if f is not None and f.kind == "list":
                return ", ".join(p for p in value.split(",") if p)
            return value
        labels = dict(f.options)
        return ", ".join(labels.get(p, p) for p in value.split(",") if p)

    def render_get(self, item: dict[str, str], other_aliases: list[str] | None = None) -> dict[str, Any]:
        """``get*`` shape: plain fields as strings, option/list fields as option maps."""
        out: dict[str, Any] = {}
        for name, f in self.fields.items():
            value = item.get(name, f.default)
            if f.kind in ("option", "multi"):
                sel = set(value.split(",")) if value else set()
                m: dict[str, Any] = {}
                if f.kind == "option" and not f.required:
                    m[""] = {"value": "None", "selected": 0 if value else 1}
                for k, label in f.options:
                    m[k] = {"value": label, "selected": 1 if k in sel else 0}
                out[name] = m
            elif f.kind in ("list", "content"):
                sep = "\n" if f.kind == "content" else ","
                entries = [e for e in value.split(sep) if e]
                m = {e: {"value": e, "selected": 1} for e in entries}
                for a in other_aliases or []:  # alias content lists all other aliases, unselected
                    m.setdefault(a, {"value": a, "selected": 0, "description": f"alias {a}"})
                out[name] = m
            else:
                out[name] = value
        return nest(out)

    def search_row(self, uuid: str, item: dict[str, str], raw: bool) -> dict[str, Any]:
        """A search row: ≤ 25.1 display values of the fixed fields; ≥ 25.7 all raw + ``%field``."""
        row: dict[str, Any] = {"uuid": uuid}
        if not raw:
            for name in self.search_fields:
                row[name] = self.label(name, item.get(name, ""))
            return row
        for name in self.fields:
            value = item.get(name, "")
            row[name] = value
            desc = self.label(name, value)
            if desc != value:
                row[f"%{name}"] = desc
        return row


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted field names (``source.network``) become nested containers, as in the d_nat model."""
    out: dict[str, Any] = {}
    for k, v in flat.items():
        node = out
        *parents, leaf = k.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def flatten(body: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The inverse of :func:`nest` for request bodies."""
    out: dict[str, Any] = {}
    for k, v in body.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ------------------------------------------------------------------ validation helpers
ALIAS_NAME = re.compile(r"^([a-zA-Z]|(([_a-zA-Z][a-zA-Z0-9]|[a-zA-Z][_a-zA-Z0-9])[_a-zA-Z0-9]{0,29}))$")
PF_RESERVED = {
    "all",
    "any",
    "block",
    "pass",
    "in",
    "out",
    "port",
    "table",
    "from",
    "to",
    "self",
    "inet",
    "inet6",
}
SERVICES = {"http", "https", "ssh", "tcp", "udp", "icmp", "smtp", "dns", "ftp", "ntp"}
FQDN = re.compile(
    r"^(?=.{1,253}$)([a-zA-Z0-9_]([a-zA-Z0-9-_]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)


def is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def is_net(s: str) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
        return True
    except ValueError:
        return False


def is_range(s: str) -> bool:
    a, sep, b = s.partition("-")
    return bool(sep) and is_ip(a) and is_ip(b)


def add_msg(v: dict[str, Any], key: str, msg: str) -> None:
    """Several messages on one field turn the value into a list (as OPNsense does)."""
    if key in v:
        v[key] = [*(v[key] if isinstance(v[key], list) else [v[key]]), msg]
    else:
        v[key] = msg
