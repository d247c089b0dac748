"""Generic desired-state operations over OPNsense's standard CRUD contract
(``search*``/``get*``/``add*``/``set*``/``del*``/``toggle*``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fazai.opnsense import errors as E
from fazai.opnsense.client import OPNsenseClient, check_saved
from fazai.opnsense.diff import Change


@dataclass(frozen=True)
class Resource:
    """One CRUD collection, e.g. aliases: ``firewall/alias/{search,get,add,set,del,toggle}Item``."""

    kind: str
    base: str  # "firewall/alias"
    noun: str  # "Item" → searchItem, getItem, ...
    key: str  # wrapper key in bodies and replies: "alias", "rule", "host", ...
    id_fields: tuple[str, ...]  # the stable identity, e.g. ("name",) or ("description",)
    newline_fields: frozenset[str] = frozenset()  # newline-separated lists (alias content)
    set_fields: frozenset[str] = frozenset()  # comma lists whose order does not matter
    apply_path: str = ""  # endpoint that makes staged changes live
    model_get: str = ""  # whole-model ``get`` path + node path of the collection in it
    model_node: tuple[str, ...] = ()
    # ``searchRule`` (25.7+) shows one interface view per request: without ``interface`` 25.7 and
    # 26.1 list floating rules only. Such a collection is listed view by view (floating, then each
    # interface from ``interface_list``) and merged by uuid.
    interface_views: bool = False
    interface_list: str = ""
    lower_fields: frozenset[str] = frozenset()  # stored lower-cased by the firewall (ChangeCase)

    def ep(self, verb: str, *args: str) -> str:
        """Endpoint path for a verb, e.g. ``ep("get", uuid)`` → ``firewall/alias/getItem/<uuid>``."""
        return "/".join([f"{self.base}/{verb}{self.noun}", *args])

    def ident(self, fields: dict[str, Any]) -> str:
        """The human identity of an item (joined id fields)."""
        return ".".join(str(fields.get(f, "")) for f in self.id_fields if fields.get(f, "") != "")


def _is_option_map(value: dict[str, Any]) -> bool:
    return all(isinstance(v, dict) and "selected" in v for v in value.values())


def flatten_item(
    item: dict[str, Any], newline_fields: Iterable[str] = (), prefix: str = ""
) -> dict[str, str]:
    """Turn a ``get*`` item (option maps, nested containers) into raw string values.

    Option maps become their selected keys joined with "," (or newline for alias content);
    ``%field`` descriptions (25.7+) are dropped; nested containers get dotted names.
    """
    out: dict[str, str] = {}
    nl = set(newline_fields)
    for k, v in item.items():
        if k.startswith("%"):
            continue
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            if _is_option_map(v):
                sel = [
                    ok
                    for ok, ov in v.items()
                    if str(ov.get("selected", 0)) in ("1", "True", "true") and ok != ""
                ]
                out[name] = ("\n" if name in nl else ",").join(sel)
            else:
                out.update(flatten_item(v, nl, prefix=f"{name}."))
        elif isinstance(v, list):
            out[name] = ",".join(str(x) for x in v)
        elif isinstance(v, bool):
            out[name] = "1" if v else "0"
        elif v is None:
            out[name] = ""
        else:
            out[name] = str(v)
    return out


def nest(flat: dict[str, str]) -> dict[str, Any]:
    """``{"source.network": "x"}`` → ``{"source": {"network": "x"}}`` (nested containers, e.g. d_nat)."""
    out: dict[str, Any] = {}
    for k, v in flat.items():
        node = out
        *parents, leaf = k.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def to_wire(value: Any, newline: bool = False) -> str:
    """A Python value as the string the API expects ("1"/"0", comma or newline lists)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple, set)):
        return ("\n" if newline else ",").join(str(v) for v in value)
    if value is None:
        return ""
    return str(value)


@dataclass
class ModelOps:
    """Ensure/delete/enable/list for one :class:`Resource` on one firewall."""

    client: OPNsenseClient
    res: Resource
    search_params: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    _views: list[str | None] | None = field(default=None)

    def normalize(self, name: str, value: Any) -> str:
        """Comparable form of a value: order-insensitive lists sorted, whitespace trimmed."""
        if name in self.res.lower_fields:
            return to_wire(value).strip().lower()
        if name in self.res.newline_fields:
            parts = value if isinstance(value, (list, tuple, set)) else str(value or "").split("\n")
            return "\n".join(sorted({str(p).strip() for p in parts if str(p).strip()}))
        s = to_wire(value)
        if name in self.res.set_fields:
            return ",".join(sorted({p.strip() for p in s.split(",") if p.strip()}))
        return s.strip()

    async def list(self, phrase: str = "", params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of the search endpoint (raw values from 25.7, display values before).

        For an interface-viewed collection (filter rules) every view is searched and the rows are
        merged by uuid, so a rule on any interface is seen whatever the version's default view."""
        body = {"current": 1, "rowCount": -1, "searchPhrase": phrase, **(params or {})}
        if not self.res.interface_views or "interface" in body:
            return await self._search(body)
        seen: dict[str, dict[str, Any]] = {}
        for view in await self.views():
            for row in await self._search(body if view is None else {**body, "interface": view}):
                seen.setdefault(str(row.get("uuid")), row)
        return list(seen.values())

    async def _search(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        reply = await self.client.search(self.res.ep("search"), body)
        return list(reply.get("rows", [])) if isinstance(reply, dict) else []

    async def views(self) -> list[str | None]:
        """The ``interface`` values to search: none (the version's default view), ``""`` (floating)
        and every interface and group the firewall lists (once per connection)."""
        if self._views is None:
            views: list[str | None] = [None, ""]
            try:
                reply = await self.client.get(self.res.interface_list)
            except E.EndpointNotFound:  # ≤ 25.1: searchRule ignores `interface` and lists every rule
                reply = None
            if isinstance(reply, dict):
                for section in ("groups", "interfaces"):
                    for it in (reply.get(section) or {}).get("items") or []:
                        value = str(it.get("value", "")) if isinstance(it, dict) else ""
                        if value and value not in views:
                            views.append(value)
            self._views = views if isinstance(reply, dict) else [None]
        return self._views

    async def get(self, uuid: str) -> dict[str, str] | None:
        """The item with this uuid as raw string values, or None if unknown."""
        reply = await self.client.get(self.res.ep("get", uuid))
        if not isinstance(reply, dict) or self.res.key not in reply:
            return None
        return flatten_item(reply[self.res.key], self.res.newline_fields)

    async def find(self, ident: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
        """Find the one item whose id fields equal ``ident``; None if absent; error if ambiguous."""
        want = {f: str(ident.get(f, "")) for f in self.res.id_fields}
        matches: list[str] = []
        phrase = next((v for v in want.values() if v), "")
        params = self.search_params(dict(ident)) if self.search_params else {}
        for row in await self.list(phrase, params):
            if all(str(row.get(f, "")) == v for f, v in want.items()):
                matches.append(str(row["uuid"]))
        if not matches:
            return None
        if len(set(matches)) > 1:
            raise E.OperationFailed(
                f"{len(matches)} {self.res.kind} items match {self.res.ident(want)!r}; "
                "give them distinct names/descriptions before managing them with FazAI."
            )
        item = await self.get(matches[0])
        return (matches[0], item) if item is not None else None

    async def ensure(self, desired: dict[str, Any], *, dry_run: bool = False) -> Change:
        """Make the item match ``desired`` (only the given fields are compared and written)."""
        want = {k: to_wire(v, k in self.res.newline_fields) for k, v in desired.items()}
        for f in self.res.id_fields:
            if not want.get(f):
                raise ValueError(f"{self.res.kind}: the field {f!r} is required (it identifies the item)")
        name = self.res.ident(want)
        found = await self.find(want)
        if found is None:
            change = Change(self.res.kind, name, "create", None, want, dry_run=dry_run)
            if not dry_run:
                change.uuid = check_saved(
                    self.res.ep("add"), await self.client.post(self.res.ep("add"), {self.res.key: nest(want)})
                )
            return change
        uuid, current = found
        before = {k: current.get(k, "") for k in want}
        if all(self.normalize(k, before[k]) == self.normalize(k, v) for k, v in want.items()):
            return Change(self.res.kind, name, "noop", before, before, uuid=uuid, dry_run=dry_run)
        changed = {k: v for k, v in want.items() if self.normalize(k, before[k]) != self.normalize(k, v)}
        change = Change(
            self.res.kind,
            name,
            "update",
            {k: before[k] for k in changed},
            changed,
            uuid=uuid,
            dry_run=dry_run,
        )
        if not dry_run:
            check_saved(
                self.res.ep("set", uuid),
                await self.client.post(self.res.ep("set", uuid), {self.res.key: nest(changed)}),
            )
        return change

    async def delete(self, ident: dict[str, Any], *, dry_run: bool = False) -> Change:
        """Delete the item if it exists (absent → no-op)."""
        found = await self.find(ident)
        name = self.res.ident({k: str(v) for k, v in ident.items()})
        if found is None:
            return Change(self.res.kind, name, "noop", dry_run=dry_run, note="not present")
        uuid, current = found
        change = Change(self.res.kind, name, "delete", current, None, uuid=uuid, dry_run=dry_run)
        if not dry_run:
            reply = await self.client.post(self.res.ep("del", uuid))
            result = reply.get("result") if isinstance(reply, dict) else None
            if result not in ("deleted", "not found"):
                raise E.OperationFailed(f"{self.res.ep('del', uuid)}: not deleted ({reply!r})")
        return change

    async def set_enabled(self, ident: dict[str, Any], enabled: bool, *, dry_run: bool = False) -> Change:
        """Enable or disable the item (explicit 0/1 toggle, so it never flips by accident)."""
        found = await self.find(ident)
        name = self.res.ident({k: str(v) for k, v in ident.items()})
        if found is None:
            raise E.OperationFailed(
                f"{self.res.kind} {name!r} not found on the firewall; nothing to enable/disable."
            )
        uuid, current = found
        want = "1" if enabled else "0"
        if current.get("enabled", "1") == want:
            return Change(
                self.res.kind, name, "noop", {"enabled": want}, {"enabled": want}, uuid=uuid, dry_run=dry_run
            )
        change = Change(
            self.res.kind,
            name,
            "update",
            {"enabled": current.get("enabled")},
            {"enabled": want},
            uuid=uuid,
            dry_run=dry_run,
        )
        if not dry_run:
            reply = await self.client.post(self.res.ep("toggle", uuid, want))
            if not isinstance(reply, dict) or reply.get("result") not in ("Enabled", "Disabled"):
                raise E.OperationFailed(f"{self.res.ep('toggle', uuid, want)}: toggle failed ({reply!r})")
        return change


def apply_ok(reply: Any) -> bool:
    """True when an apply/reconfigure reply says it worked (``status``/``result`` ok, OK\\n\\n, done)."""
    if not isinstance(reply, dict):
        return False
    value = reply.get("status", reply.get("result", ""))
    return isinstance(value, str) and value.strip().lower() in ("ok", "done")
