"""The simulated firewall: state + an ASGI app routing ``/api/<module>/<controller>/<action>/<args>``."""

from __future__ import annotations

import asyncio
import base64
import copy
import fnmatch
import ipaddress
import json
import re
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from . import rules as rules_mod
from .models import (
    ALIAS_NAME,
    FQDN,
    PF_RESERVED,
    SERVICES,
    add_msg,
    is_ip,
    is_net,
    is_range,
)
from .schema import IFACES, new_collections

__all__ = ["IFACES", "Simulator"]  # IFACES: the interfaces handlers list

VERSIONS = ("25.1", "25.7", "26.1", "26.7")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ROLLBACK_S = 60.0
LOGIN_PAGE = b"<!doctype html><html><head><title>Login | OPNsense</title></head><body>OPNsense</body></html>"
# The collections of the OPNsense\Firewall\Filter model: what savepoint/revert/rollback cover.
FILTER_MODEL = ("rule", "snat", "one_to_one")


class Clock:
    """Injectable clock: tests move time with :meth:`advance`."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ApiKey:
    """An API key of a local user: its secret, privileges (ACL patterns or ``page-all``), flags."""

    secret: str
    privileges: list[str] = field(default_factory=lambda: ["page-all"])
    user: str = "fazai"
    readonly: bool = False
    disabled: bool = False


class UserException(Exception):
    """OPNsense's UserException → HTTP 500 ``{"errorMessage","errorTitle","errorLevel":"error"}``."""

    def __init__(self, message: str, title: str = "") -> None:
        super().__init__(message)
        self.title = title


class Reply(Exception):
    """Short-circuit with an explicit status and body."""

    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body


def _v(text: str) -> tuple[int, int]:
    a, b = text.split(".")[:2]
    return int(a), int(b)


def _full(text: str) -> tuple[int, int, int]:
    """``26.1`` → (26, 1, 0) (the release), ``26.1.11`` → (26, 1, 11)."""
    parts = [int(p) for p in text.split(".")]
    return parts[0], parts[1], parts[2] if len(parts) > 2 else 0


class Simulator:
    """One simulated firewall. ``keys`` maps API key → :class:`ApiKey`."""

    def __init__(self, version: str = "26.1", *, clock: Clock | None = None) -> None:
        if ".".join(version.split(".")[:2]) not in VERSIONS:
            raise ValueError(f"simulated series: {VERSIONS} (optionally with a patch level, e.g. 26.1.11)")
        self.version_text = version
        self.version = _v(version)
        self.full_version = _full(version)  # the patch level matters for searchRule (26.1 vs 26.1.1+)
        self.clock = clock or Clock()
        self.keys: dict[str, ApiKey] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) log for assertions
        self.fail_next: list[int] = []  # HTTP statuses to answer before handling (e.g. 503 from a proxy)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything but keys and version."""
        self.cols = new_collections(self.full_version)
        self.running: dict[str, dict[str, dict[str, str]]] = {}  # applied copies, per collection
        self.pf_tables: dict[str, set[str]] = {}
        self.savepoints: dict[str, dict[str, dict[str, str]]] = {}
        self.rollback_timers: dict[str, float] = {}
        self.rollbacks_done: list[str] = []
        self.backups: list[tuple[float, str]] = []  # (time, xml)
        self.dnsbl_legacy = {"enabled": "0", "type": "", "lists": "", "address": "", "nxdomain": "0"}
        self.ids_rules: dict[int, dict[str, Any]] = {
            2001219: {
                "msg": "ET SCAN Potential SSH Scan",
                "action": "alert",
                "enabled": 1,
                "classtype": "attempted-recon",
            },
            2013028: {
                "msg": "ET POLICY curl User-Agent Outbound",
                "action": "alert",
                "enabled": 1,
                "classtype": "policy",
            },
        }
        self.eve: list[dict[str, Any]] = []
        self.applied: list[str] = []  # which apply/reconfigure endpoints ran
        self.filter_reloads = 0
        self.reload_log: list[bool] = []
        self.drop_reply_of: set[str] = set()  # paths handled but never answered (the reload cut us off)
        # pf states: (client ip, client port) of TCP connections that passed the filter. pf keeps
        # them across a reload, so an established keep-alive connection goes on working after a
        # rule that blocks its source went live; only new connections are dropped.
        self.states: set[tuple[str, int]] = set()
        self.keep_states = True
        self.filterlog: list[dict[str, Any]] = []  # parsed filterlog lines, oldest first
        from .system_ops import OpsState  # firmware, CARP, services, history snapshots

        self.ops = OpsState()
        self.save_config("initial configuration")  # a real install always has one history entry

    def add_key(self, key: str, secret: str, **kw: Any) -> ApiKey:
        """Register an API key."""
        self.keys[key] = ApiKey(secret, **kw)
        return self.keys[key]

    def save_config(self, description: str = "/api made changes") -> None:
        """Every successful save writes a backup revision (config.xml with its ``<revision>``) into
        the history, as core's ``Config::save()`` does; the models are kept for a revert."""
        from .system_ops import snapshot

        t = self.clock()
        self.backups.append((t, self.config_xml(revision=(t, description))))
        self.ops.backup_state.append(snapshot(self))

    def config_xml(self, revision: tuple[float, str] | None = None) -> str:
        """A config.xml rendering of the staged models (values XML-escaped, as core writes them)."""
        lines = ['<?xml version="1.0"?>', "<opnsense>", f"  <version>{self.version_text}</version>"]
        if revision is not None:
            lines.append(
                f"  <revision><username>root@127.0.0.1</username><time>{revision[0]:.4f}</time>"
                f"<description>{escape(revision[1])}</description></revision>"
            )
        for name, col in self.cols.items():
            lines.append(f"  <{name}s>")
            for u, item in sorted(col.items.items()):
                attrs = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in item.items())
                lines.append(f'    <{col.key} uuid="{u}">{attrs}</{col.key}>')
            lines.append(f"  </{name}s>")
        lines.append("</opnsense>")
        return "\n".join(lines) + "\n"

    def tick(self) -> None:
        """Fire rollback timers whose 60 s have passed (the rollback_timer script)."""
        for rev, deadline in list(self.rollback_timers.items()):
            if self.clock() >= deadline:
                del self.rollback_timers[rev]
                self._restore_rules(rev)
                self.rollbacks_done.append(rev)

    def _restore_rules(self, rev: str) -> None:
        """The rollback: the Filter model (rules, source NAT, 1:1) from the savepoint, then
        ``filter reload`` (which on ≤ 26.1 also reloads the alias tables)."""
        for name, items in self.savepoints[rev].items():
            self.cols[name].items = copy.deepcopy(items)
        self.filter_reload(aliases=True)

    def filter_reload(self, *, aliases: bool) -> None:
        """configd ``filter reload``: staged Filter-model items go live (``skip_alias``: not the tables)."""
        for name in FILTER_MODEL:
            self.running[name] = copy.deepcopy(self.cols[name].items)
        if aliases:
            self.load_tables()
        self.filter_reloads += 1
        self.reload_log.append(bool(self.rollback_timers))  # was a rollback timer armed?

    def load_tables(self) -> None:
        """Load host/network alias contents into their pf tables (``filter refresh_aliases``)."""
        names = {a["name"] for a in self.cols["alias"].items.values()}
        for a in self.cols["alias"].items.values():
            if a.get("type") in ("host", "network") and a.get("enabled") == "1":
                self.pf_tables[a["name"]] = {e for e in a.get("content", "").split("\n") if e}
            else:
                self.pf_tables.setdefault(a["name"], set())
        for name in list(self.pf_tables):
            if name not in names:
                del self.pf_tables[name]
        self.running["alias"] = copy.deepcopy(self.cols["alias"].items)

    def log_block(self, src: str, sport: int, dport: int = 443) -> None:
        """A filterlog line for a packet dropped by the first matching applied block rule."""
        rule = next(
            (
                (u, r)
                for u, r in self.running.get("rule", {}).items()
                if r.get("enabled") == "1" and r.get("action") in ("block", "reject")
            ),
            ("", {}),
        )
        self.filterlog.append(
            {
                "__timestamp__": f"{self.clock():.0f}",
                "__host__": "OPNsense.localdomain",
                "__digest__": f"{len(self.filterlog):032x}",
                "rulenr": "10",
                "subrulenr": "",
                "anchorname": "",
                "rid": rule[0],
                "interface": "vtnet0",
                "reason": "match",
                "action": "block",
                "dir": "in",
                "ipversion": "4",
                "protoname": "tcp",
                "protonum": "6",
                "src": src,
                "dst": "192.0.2.1",
                "srcport": str(sport),
                "dstport": str(dport),
                "label": rule[1].get("description", ""),
            }
        )

    def add_eve(self, record: dict[str, Any]) -> None:
        """Append an EVE record to the simulated eve.json."""
        self.eve.append(record)

    def locked_out(self, client_ip: str) -> bool:
        """True when an applied, enabled block/reject rule matches ``client_ip`` as source."""
        try:
            ip = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        for r in self.running.get("rule", {}).values():
            if r.get("enabled") != "1" or r.get("action") not in ("block", "reject"):
                continue
            for src in r.get("source_net", "").split(","):
                if src in self.pf_tables:
                    nets = list(self.pf_tables[src])
                elif src and src != "any":
                    nets = [src]
                else:
                    nets = []
                for n in nets:
                    try:
                        if ip in ipaddress.ip_network(n, strict=False):
                            return True
                    except ValueError:
                        continue
        return False

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        client = scope.get("client") or ("", 0)
        client_ip = client[0]
        conn = (str(client[0]), int(client[1]))
        self.tick()
        if self.fail_next:
            status = self.fail_next.pop(0)
            self.requests.append((scope["method"], f"{scope['path']} -> {status}"))
            await send(
                {"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        # A lockout drops our packets: no answer until the rollback timer restores the rules. A
        # connection with a pf state (it passed before) is not re-evaluated, unless states are flushed.
        waited = 0.0
        while not (self.keep_states and conn in self.states) and self.locked_out(client_ip) and waited < 5.0:
            await asyncio.sleep(0.05)
            waited += 0.05
            self.tick()
        if waited >= 5.0:
            self.log_block(client_ip, int(client[1]))
            return  # dropped: the client sees no answer (its read times out)
        self.states.add(conn)
        status, payload, ctype = self.handle(
            scope["method"], scope["path"], scope.get("query_string", b""), headers, body
        )
        if any(scope["path"].startswith(p) for p in self.drop_reply_of):
            await asyncio.sleep(5.0)  # the change happened; its reply never reaches the client
            return
        out = (
            payload
            if isinstance(payload, bytes)
            else b""
            if payload is None
            else json.dumps(payload).encode()
        )
        hdrs = [(b"content-type", ctype.encode()), (b"content-length", str(len(out)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": out})

    def handle(
        self, method: str, path: str, query: bytes, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, str]:
        """Route, authenticate, parse, dispatch. Returns (status, body, content type)."""
        json_ct = "application/json; charset=UTF-8"
        if path in ("", "/") and method == "GET":  # the web GUI's login page (clients probe it)
            return 200, LOGIN_PAGE, "text/html; charset=UTF-8"
        segs = [s for s in path.split("/") if s]
        if len(segs) < 4 or segs[0] != "api":
            return 404, {"errorMessage": "Endpoint not found"}, json_ct
        module, controller, action, args = segs[1], segs[2], segs[3], segs[4:]
        handler = self.route(module, controller, action, len(args))
        if handler is None:  # routing happens before authentication
            return 404, {"errorMessage": "Endpoint not found"}, json_ct
        self.requests.append((method, path))
        auth = headers.get("authorization")
        if auth is None:
            return 401, None, "text/html"
        try:
            key, _, secret = base64.b64decode(auth.split(" ")[1]).decode().partition(":")
        except Exception:
            key, secret = "", ""
        k = self.keys.get(key)
        if k is None or k.secret != secret or k.disabled:
            return 401, {"status": 401, "message": "Authentication Failed"}, json_ct
        uri = path.lstrip("/")
        if "page-all" not in k.privileges and not any(fnmatch.fnmatch(uri, p) for p in k.privileges):
            return 403, {"status": 403, "message": "Forbidden"}, json_ct
        post: dict[str, Any] = {}
        ctype = headers.get("content-type", "")
        if ctype.split(";")[0].strip() == "application/json":
            if not body:
                return 400, {"status": 400, "message": "Invalid JSON syntax"}, json_ct
            try:
                parsed = json.loads(body)
                post = parsed if isinstance(parsed, dict) else {}
            except ValueError:
                post = {}  # invalid JSON silently becomes an empty $_POST
        elif ctype.startswith("application/x-www-form-urlencoded"):
            post = {k2: v[0] for k2, v in parse_qs(body.decode()).items()}
        qs = {k2: v[0] for k2, v in parse_qs(query.decode()).items()}
        req = Req(method, post, qs, k)
        try:
            result = handler(req, *args)
        except UserException as e:
            return 500, {"errorMessage": str(e), "errorTitle": e.title, "errorLevel": "error"}, json_ct
        except Reply as r:
            return r.status, r.body, json_ct
        if isinstance(result, RawReply):
            return 200, result.data, result.ctype
        return 200, result, json_ct

    def route(self, module: str, controller: str, action: str, nargs: int) -> Callable[..., Any] | None:
        """Resolve like OPNsense's router: snake_case or camelCase, then check the argument count."""
        norm = lambda s: s.replace("_", "").lower()  # noqa: E731
        entry = _routes(self).get((module.lower(), norm(controller), norm(action)))
        if entry is None:
            return None
        fn, lo, hi, since, until = entry
        if (since and self.version < since) or (until and self.version > until):
            return None
        if not lo <= nargs <= hi:
            return None
        return fn


@dataclass
class Req:
    method: str
    post: dict[str, Any]
    query: dict[str, Any]
    key: ApiKey

    @property
    def is_post(self) -> bool:
        return self.method == "POST"

    def request(self, name: str, default: Any = None) -> Any:
        """``$_REQUEST``: the query string or the body."""
        return self.post.get(name, self.query.get(name, default))


@dataclass
class RawReply:
    data: bytes
    ctype: str


def _routes(sim: Simulator) -> dict[tuple[str, str, str], tuple[Callable[..., Any], int, int, Any, Any]]:
    from .handlers import build_routes

    cache = getattr(sim, "_route_cache", None)
    if cache is None:
        cache = build_routes(sim)
        sim._route_cache = cache  # type: ignore[attr-defined]
    return cache


# ------------------------------------------------------------------ validation per collection
def validate(sim: Simulator, colname: str, item: dict[str, str], uuid: str) -> dict[str, Any]:
    """Model validation; keys are ``<key>.<field>``."""
    col = sim.cols[colname]
    v: dict[str, Any] = {}
    k = col.key
    for name, f in col.fields.items():
        value = item.get(name, "")
        if f.required and value == "":
            add_msg(v, f"{k}.{name}", "A value is required.")
        if f.kind == "bool" and value not in ("0", "1") and not (value == "" and not f.default):
            add_msg(v, f"{k}.{name}", "Value should be a boolean (0,1).")
        if f.kind == "optint" and value and not re.fullmatch(r"-?\d+", value):
            add_msg(v, f"{k}.{name}", "Invalid integer value.")
        if f.kind in ("option", "multi") and value:
            keys = {o for o, _ in f.options}
            bad = [p for p in (value.split(",") if f.kind == "multi" else [value]) if p not in keys]
            if bad:
                add_msg(v, f"{k}.{name}", f"Option [{','.join(bad)}] not in list.")
    if colname == "alias":
        _validate_alias(sim, item, uuid, v)
    elif colname in ("rule", "snat"):
        rules_mod.validate_rule(item, v, k, lambda n: _net_ok(sim, n), snat=colname == "snat")
    elif colname == "host":
        if item.get("hostname") and not re.match(r"^(\*|[a-zA-Z0-9_-]+)$", item["hostname"]):
            add_msg(v, "host.hostname", "A valid hostname must be specified.")
        if item.get("domain") and not FQDN.match(item["domain"]):
            add_msg(v, "host.domain", "A valid domain must be specified.")
        if item.get("rr") in ("A", "AAAA"):
            if not item.get("server"):
                add_msg(v, "host.server", "The field IP address is required.")
            elif not is_ip(item["server"]):
                add_msg(v, "host.server", "A valid IP address must be specified.")
    return v


def _validate_alias(sim: Simulator, item: dict[str, str], uuid: str, v: dict[str, Any]) -> None:
    name = item.get("name", "")
    if name and not ALIAS_NAME.match(name):
        add_msg(
            v,
            "alias.name",
            "The name must start with a letter or single underscore, be less than 32 characters and only "
            "consist of alphanumeric characters or underscores.",
        )
    elif name.lower() in PF_RESERVED:
        add_msg(v, "alias.name", 'The name cannot be the internally reserved keyword "%s".')
    elif name.lower() in SERVICES:
        add_msg(v, "alias.name", "Reserved protocol or service names may not be used")
    for u, other in sim.cols["alias"].items.items():
        if u != uuid and other.get("name") == name:
            add_msg(v, "alias.name", "An alias with this name already exists.")
    names = {a["name"] for a in sim.cols["alias"].items.values()}
    typ = item.get("type", "")
    for entry in [e for e in item.get("content", "").split("\n") if e]:
        bare = entry.lstrip("!")
        if typ == "host" and not (is_ip(bare) or is_range(bare) or FQDN.match(bare) or bare in names):
            add_msg(v, "alias.content", f'Entry "{entry}" is not a valid hostname, IP address or range.')
        elif typ == "network" and not (is_net(bare) or is_range(bare) or bare in names):
            add_msg(v, "alias.content", f'Entry "{entry}" is not a network.')
        elif typ == "port" and not (re.match(r"^\d{1,5}(:\d{1,5})?$", entry) or entry in names):
            add_msg(v, "alias.content", f'Entry "{entry}" is not a valid port number.')


def _net_ok(sim: Simulator, value: str) -> bool:
    names = {a["name"] for a in sim.cols["alias"].items.values()}
    return (
        value in ("any", "(self)")
        or value in names
        or is_net(value)
        or value in {"lan", "wan", "opt1", "lanip", "wanip"}
    )


def new_uuid() -> str:
    return str(uuidlib.uuid4())
