"""Endpoint handlers of the simulated firewall, per the reference's endpoint tables."""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from . import rules as rules_mod
from .app import (
    FILTER_MODEL,
    IFACES,
    ROLLBACK_S,
    UUID_RE,
    Req,
    Simulator,
    UserException,
    new_uuid,
    validate,
)
from .models import flatten
from .system_ops import product_block

Route = tuple[Callable[..., Any], int, int, Any, Any]


def build_routes(sim: Simulator) -> dict[tuple[str, str, str], Route]:
    routes: dict[tuple[str, str, str], Route] = {}

    def add(
        path: str, fn: Callable[..., Any], lo: int = 0, hi: int = 0, since: Any = None, until: Any = None
    ) -> None:
        module, controller, action = path.split("/")
        routes[(module.lower(), controller.replace("_", "").lower(), action.replace("_", "").lower())] = (
            fn,
            lo,
            hi,
            since,
            until,
        )

    # ------------------------------------------------------------------ generic CRUD
    def crud(
        base: str, noun: str, colname: str, since: Any = None, on_delete: Callable | None = None
    ) -> None:
        def col():
            return sim.cols[colname]

        def search(req: Req) -> Any:
            rows = []
            raw = sim.version >= (25, 7)
            for u, item in col().items.items():
                rows.append(col().search_row(u, item, raw))
            return page(req, rows, model_search=True)

        def get(req: Req, uuid: str | None = None) -> Any:
            others = [a["name"] for a in sim.cols["alias"].items.values()] if colname == "alias" else None
            if uuid is None:
                return {col().key: col().render_get(col().blank(), others)}
            item = col().items.get(uuid)
            if item is None:
                return []
            if colname == "alias":
                others = [n for n in others or [] if n != item.get("name")]
            return {col().key: col().render_get(item, others)}

        def save(req: Req, uuid: str, existing: dict[str, str] | None) -> Any:
            if not req.is_post or not isinstance(req.post.get(col().key), dict):
                return {"result": "failed"}
            check_write(req)
            item = dict(existing) if existing else col().blank()
            for k2, v in flatten(req.post[col().key]).items():
                f = col().fields.get(k2)
                if f is not None and f.kind != "volatile":
                    value = v if isinstance(v, str) else str(v)
                    item[k2] = value.lower() if f.case == "lower" else value
            errors = validate(sim, colname, item, uuid)
            if errors:
                return {"result": "failed", "validations": errors}
            col().items[uuid] = item
            sim.save_config()
            return {"result": "saved"}

        def add_item(req: Req) -> Any:
            u = new_uuid()
            r = save(req, u, None)
            return {**r, "uuid": u} if r.get("result") == "saved" else r

        def set_item(req: Req, uuid: str) -> Any:
            if not UUID_RE.match(uuid):
                return {"result": "failed"}
            return save(req, uuid, col().items.get(uuid))  # upsert on an unknown well-formed uuid

        def del_item(req: Req, uuids: str) -> Any:
            if not req.is_post:
                return {"result": "failed"}
            check_write(req)
            ids = uuids.split(",") if sim.version >= (26, 7) else [uuids]
            found = [u for u in ids if u in col().items]
            if not found:
                return {"result": "not found"}
            for u in found:
                if on_delete:
                    on_delete(col().items[u])
            for u in found:
                del col().items[u]
            sim.save_config()
            return {"result": "deleted"}

        def toggle(req: Req, uuid: str, enabled: str | None = None) -> Any:
            if not req.is_post or uuid not in col().items:
                return {"result": "failed"}
            check_write(req)
            item = col().items[uuid]
            old = item.get("enabled", "1")
            new = ("0" if old == "1" else "1") if enabled is None else ("1" if enabled == "1" else "0")
            item["enabled"] = new
            if new != old:
                sim.save_config()
            return {"result": "Enabled" if new == "1" else "Disabled", "changed": new != old}

        add(f"{base}/search{noun}", search, since=since)
        add(f"{base}/get{noun}", get, 0, 1, since=since)
        add(f"{base}/add{noun}", add_item, since=since)
        add(f"{base}/set{noun}", set_item, 1, 1, since=since)
        add(f"{base}/del{noun}", del_item, 1, 1, since=since)
        add(f"{base}/toggle{noun}", toggle, 1, 2, since=since)

    def check_write(req: Req) -> None:
        if req.key.readonly:
            raise UserException(f"User {req.key.user} denied for write access (user-config-readonly set)")

    def alias_in_use(item: dict[str, str]) -> None:
        name = item["name"]
        users = [
            r.get("description") or u
            for colname in ("rule", "snat", "one_to_one")
            for u, r in sim.cols[colname].items.items()
            if name in r.get("source_net", "").split(",") + r.get("destination_net", "").split(",")
        ]
        users += [
            a["name"] for a in sim.cols["alias"].items.values() if name in a.get("content", "").split("\n")
        ]
        if users:
            raise UserException(
                f"Cannot delete alias {name}. Currently in use by {', '.join(users)}", "Alias in use"
            )

    crud("firewall/alias", "Item", "alias", on_delete=alias_in_use)
    crud("firewall/filter", "Rule", "rule")
    crud("firewall/source_nat", "Rule", "snat")
    crud("firewall/one_to_one", "Rule", "one_to_one")
    crud("firewall/d_nat", "Rule", "dnat", since=(26, 1))
    crud("unbound/settings", "HostOverride", "host")
    crud("unbound/settings", "Dnsbl", "blocklist", since=(26, 1))
    crud("wireguard/server", "Server", "server")
    crud("wireguard/client", "Client", "client")
    crud("ids/settings", "Policy", "policy")

    # 25.7+ searchRule: a record-set search whose `interface` parameter picks a view, differently
    # per version (rules.rule_visible): on 25.7 and 26.1 no `interface` means floating rules only.
    if sim.version >= (25, 7):

        def search_rule(req: Req) -> Any:
            has = "interface" in req.post or "interface" in req.query
            raw = str(req.request("interface", "") or "")
            wanted = [i for i in raw.split(",") if i]
            rows = [
                sim.cols["rule"].search_row(u, item, True)
                for u, item in sorted(
                    sim.cols["rule"].items.items(), key=lambda kv: int(kv[1]["sequence"] or 0)
                )
                if rules_mod.rule_visible(sim.full_version, item, has, wanted)
            ]
            return page(req, rows, model_search=False)

        add("firewall/filter/searchRule", search_rule)
        add(
            "firewall/filter/getInterfaceList",
            lambda req: rules_mod.interface_list(
                sim.full_version, list(sim.cols["rule"].items.values()), IFACES
            ),
        )

    def rendered(colname: str) -> dict[str, Any]:
        col = sim.cols[colname]
        return {col.key: {u: col.render_get(i) for u, i in col.items.items()}}

    def filter_get(req: Req) -> Any:
        """Whole-model ``get`` of OPNsense\\Firewall\\Filter (every filter-based controller shares it)."""
        return {
            "filter": {
                "rules": rendered("rule"),
                "snatrules": rendered("snat"),
                "onetoone": rendered("one_to_one"),
                "npt": {"rule": {}},
            }
        }

    for ctl in ("filter", "source_nat", "one_to_one"):
        add(f"firewall/{ctl}/get", filter_get)

    def alias_model_get(req: Req) -> Any:
        names = [a["name"] for a in sim.cols["alias"].items.values()]
        col = sim.cols["alias"]
        items = {u: col.render_get(i, [n for n in names if n != i.get("name")]) for u, i in col.items.items()}
        return {"alias": {"aliases": {"alias": items}, "geoip": {"url": ""}}}

    add("firewall/alias/get", alias_model_get)

    # ------------------------------------------------------------------ apply / reconfigure
    def alias_reconfigure(req: Req) -> Any:
        if not req.is_post:
            return {"status": "failed"}
        # AliasController::reconfigure runs `filter reload skip_alias` and then `filter
        # refresh_aliases`: the whole filter reloads, staged rule edits included, with no timer.
        sim.filter_reload(aliases=False)
        sim.load_tables()
        sim.applied.append("alias")
        return {"status": "ok"}

    def filter_apply(req: Req, rev: str | None = None) -> Any:
        if not req.is_post:
            return {"status": "error"}
        if rev is not None and sim.version <= (26, 1):
            # ≤ 26.1: the background `filter rollback_timer` starts before the reload.
            sim.rollback_timers[rev] = sim.clock() + ROLLBACK_S
        # 26.7: applyAction() takes no argument; the router passes the extra path part anyway and
        # PHP ignores it, so apply/{rev} applies with no timer. 26.7 reloads with `skip_alias`.
        sim.filter_reload(aliases=sim.version <= (26, 1))
        sim.applied.append("filter")
        return {"status": "OK\n\n"}

    add("firewall/alias/reconfigure", alias_reconfigure)

    def savepoint(req: Req) -> Any:
        if not req.is_post:
            return {"status": "error"}
        rev = f"{sim.clock():0.2f}"
        sim.savepoints[rev] = {n: copy.deepcopy(sim.cols[n].items) for n in FILTER_MODEL}
        sim.save_config()
        return {"status": "ok", "retention": "100", "revision": rev}

    def cancel_rollback(req: Req, rev: str) -> Any:
        if not req.is_post:
            return {"status": "error"}
        sim.rollback_timers.pop(rev, None)
        return {"status": ""}

    def revert(req: Req, rev: str) -> Any:
        if not req.is_post:
            return {"status": "error"}
        if rev not in sim.savepoints:
            return {"status": "unknown (or removed) savepoint"}
        sim.rollback_timers.pop(rev, None)
        sim._restore_rules(rev)
        sim.rollbacks_done.append(rev)
        return {"status": "ok"}

    # Every FilterBaseController (filter, source_nat, one_to_one) has apply and, ≤ 26.1, the savepoint set.
    for ctl in ("filter", "source_nat", "one_to_one"):
        add(f"firewall/{ctl}/apply", filter_apply, 0, 1)
        add(f"firewall/{ctl}/savepoint", savepoint, until=(26, 1))
        add(f"firewall/{ctl}/cancelRollback", cancel_rollback, 1, 1, until=(26, 1))
        add(f"firewall/{ctl}/revert", revert, 1, 1, until=(26, 1))

    def move_before(req: Req, selected: str, target: str) -> Any:
        items = sim.cols["rule"].items
        if not req.is_post:
            return {"status": "error", "message": "Invalid request method"}
        if selected not in items or target not in items:
            raise UserException(
                "Either source or destination is not a rule managed with this component", "Filter"
            )
        tseq = int(items[target]["sequence"])
        ordered = sorted((u for u in items if u != selected), key=lambda u: int(items[u]["sequence"]))
        seq = 1
        for u in ordered:  # renumber with a gap before the target
            if u == target:
                items[selected]["sequence"] = str(seq)
                seq += 1
            items[u]["sequence"] = str(seq)
            seq += 1
        del tseq
        sim.save_config()
        return {"status": "ok"}

    add("firewall/filter/moveRuleBefore", move_before, 2, 2, since=(25, 7))

    # ------------------------------------------------------------------ alias_util
    def alias_type(name: str) -> str | None:
        for a in sim.cols["alias"].items.values():
            if a["name"] == name:
                return a.get("type")
        return None

    def au_list(req: Req, name: str) -> Any:
        rows = [{"ip": ip} for ip in sorted(sim.pf_tables.get(name, set()))]
        return page(req, rows, model_search=False)

    def au_change(verb: str) -> Callable[..., Any]:
        def fn(req: Req, name: str) -> Any:
            if not req.is_post:
                return {"status": "failed"}
            address = str(req.post.get("address", ""))
            if not re.fullmatch(r"[0-9a-fA-F:./_]+", address):
                return {"status": "not_an_address"}
            typ = alias_type(name)
            if typ is None:
                return {"status": "failed", "status_msg": f"nonexistent alias {name}"}
            table = sim.pf_tables.setdefault(name, set())
            entry = address
            if typ == "network" and "/" not in address:
                entry = address + ("/128" if ":" in address else "/32")
            if verb == "add":
                table.add(entry)
            else:
                table.discard(entry)
                table.discard(address)
            if typ in ("host", "network"):  # persisted into the alias content too
                for a in sim.cols["alias"].items.values():
                    if a["name"] == name:
                        content = [e for e in a.get("content", "").split("\n") if e]
                        if verb == "add" and entry not in content:
                            content.append(entry)
                        if verb == "delete":
                            content = [e for e in content if e not in (entry, address)]
                        a["content"] = "\n".join(content)
                sim.save_config()
            return {"status": "done"}

        return fn

    def au_flush(req: Req, name: str) -> Any:
        if not req.is_post:
            return {"status": "failed"}
        sim.pf_tables[name] = set()
        return {"status": "done"}

    add("firewall/alias_util/list", au_list, 1, 1)
    add("firewall/alias_util/add", au_change("add"), 1, 1)
    add("firewall/alias_util/delete", au_change("delete"), 1, 1)
    add("firewall/alias_util/flush", au_flush, 1, 1)
    add("firewall/alias_util/aliases", lambda req: sorted(sim.pf_tables))

    # ------------------------------------------------------------------ services
    def service_ok(
        name: str, key: str = "status", value: str = "ok", fail: str = "failed"
    ) -> Callable[..., Any]:
        def fn(req: Req) -> Any:
            if not req.is_post:
                return {key: fail}
            sim.applied.append(name)
            return {key: value}

        return fn

    add("unbound/service/reconfigure", service_ok("unbound"))
    add("unbound/service/dnsbl", service_ok("dnsbl", value="OK\n\n"))
    add("wireguard/service/reconfigure", service_ok("wireguard", key="result"))
    add("ids/service/reloadRules", service_ok("ids_reload", value="OK\n\n"))
    add("ids/service/updateRules", service_ok("ids_update", value="OK\n\n"), 0, 1)
    add(
        "ids/service/status",
        lambda req: {
            "status": "running",
            "widget": {"caption_restart": "Restart", "caption_start": "Start", "caption_stop": "Stop"},
        },
    )

    def query_alerts(req: Req) -> Any:
        if not req.is_post:
            return []
        phrase = str(req.post.get("searchPhrase", "")).lower()
        rows = []
        pos = 0
        positions = []
        for rec in sim.eve:
            positions.append(pos)
            pos += len(str(rec)) + 1
        for rec, fp in reversed(list(zip(sim.eve, positions, strict=True))):
            if "alert" not in rec:
                continue
            row = {k: v for k, v in rec.items() if k != "alert"}
            row.update(
                alert=rec["alert"]["signature"],
                alert_sid=rec["alert"]["signature_id"],
                alert_action=rec["alert"]["action"],
                filepos=fp,
                fileid="",
            )
            hay = " ".join(
                str(row.get(k, "")) for k in ("alert", "alert_action", "src_ip", "dest_ip")
            ).lower()
            if phrase and phrase not in hay:
                continue
            rows.append(row)
        limit = int(req.post.get("rowCount", 50))
        current = int(req.post.get("current", 1))
        sel = rows[(current - 1) * limit : current * limit]
        return {
            "rows": sel,
            "rowCount": len(sel),
            "total": len(rows),
            "current": current,
            "filters": {},
            "origin": "eve.json",
        }

    add("ids/service/queryAlerts", query_alerts)

    def rule_info(req: Req, sid: str) -> Any:
        r = sim.ids_rules.get(int(sid)) if sid.isdigit() else None
        if r is None:
            return []
        return {
            "sid": int(sid),
            "msg": r["msg"],
            "enabled": r["enabled"],
            "classtype": r["classtype"],
            "action": {
                a: {"value": a.capitalize(), "selected": 1 if r["action"] == a else 0}
                for a in ("alert", "drop")
            },
        }

    def ids_set_rule(req: Req, sid: str) -> Any:
        if not req.is_post or "action" not in req.post:
            return {"result": "failed"}
        r = sim.ids_rules.get(int(sid)) if sid.isdigit() else None
        if r is None or req.post["action"] not in ("alert", "drop"):
            return {"result": "failed", "validations": {"action": "Invalid action"}}
        r["action"] = req.post["action"]
        r["enabled"] = 1 if str(req.post.get("enabled", "1")) == "1" else 0
        return {"result": "saved"}

    add("ids/settings/getRuleInfo", rule_info, 1, 1)
    add("ids/settings/setRule", ids_set_rule, 1, 1)

    # ------------------------------------------------------------------ unbound legacy DNSBL (≤ 25.7)
    dnsbl_types = ("atf", "aa", "ag", "hgz002")

    def unbound_get(req: Req) -> Any:
        if req.is_post:
            return []
        d = sim.dnsbl_legacy
        sel = set(d["type"].split(","))
        dnsbl = {**d, "type": {t: {"value": t, "selected": 1 if t in sel else 0} for t in dnsbl_types}}
        return {"unbound": {"general": {"enabled": "1"}, "dnsbl": dnsbl}}

    def unbound_set(req: Req) -> Any:
        if not req.is_post or not isinstance(req.post.get("unbound"), dict):
            return {"result": "failed"}
        check_write(req)
        new = req.post["unbound"].get("dnsbl", {})
        bad = [t for t in str(new.get("type", "")).split(",") if t and t not in dnsbl_types]
        if bad:
            return {"result": "failed", "validations": {"unbound.dnsbl.type": "Option not in list."}}
        sim.dnsbl_legacy.update({k: str(v) for k, v in new.items() if k in sim.dnsbl_legacy})
        sim.save_config()
        return {"result": "saved"}

    if sim.version <= (25, 7):
        add("unbound/settings/get", unbound_get)
        add("unbound/settings/set", unbound_set)

    # ------------------------------------------------------------------ system
    add(
        "core/firmware/info",
        lambda req: {
            "product_id": "opnsense",
            "product_version": sim.version_text,
            "package": [],
            "plugin": [],
            "changelog": [],
            "product": product_block(sim),
        },
    )
    add(
        "core/system/status",
        lambda req: {
            "metadata": {"system": {"status": "OK", "message": "No pending messages", "title": "System"}},
            "subsystems": {},
        },
    )
    add(
        "diagnostics/system/systemResources",
        lambda req: {
            "memory": {"total": "8589934592", "total_frmt": "8192", "used": 2147483648, "used_frmt": "2048"}
        },
    )
    add(
        "diagnostics/system/systemTime",
        lambda req: {
            "uptime": "1 day",
            "datetime": "Mon Nov 23 11:00:00 UTC 2026",
            "boottime": "",
            "config": "",
            "loadavg": "0.10, 0.20, 0.30",
        },
    )
    add(
        "interfaces/overview/interfacesInfo",
        lambda req: page(
            req,
            [
                {
                    "identifier": "wan",
                    "description": "WAN",
                    "device": "vtnet0",
                    "status": "up",
                    "addr4": "192.0.2.1/24",
                    "enabled": True,
                },
                {
                    "identifier": "lan",
                    "description": "LAN",
                    "device": "vtnet1",
                    "status": "up",
                    "addr4": "10.0.0.1/24",
                    "enabled": True,
                },
            ],
            model_search=False,
        ),
        0,
        1,
    )
    add(
        "routes/gateway/status",
        lambda req: {
            "items": [
                {
                    "name": "WAN_GW",
                    "address": "192.0.2.254",
                    "status": "none",
                    "status_translated": "Online",
                    "loss": "0.0 %",
                    "delay": "1.2 ms",
                    "stddev": "0.1 ms",
                    "monitor": "192.0.2.254",
                }
            ],
            "status": "ok",
        },
    )
    from .diagnostics import register as register_reads

    register_reads(sim, add)
    from .system_ops import register as register_system_ops

    register_system_ops(sim, add)
    return routes


def page(req: Req, rows: list[dict[str, Any]], *, model_search: bool) -> dict[str, Any]:
    """Search paging: model searches read $_REQUEST, record-set searches only the POST body."""
    src = req.request if model_search else (lambda k, d=None: req.post.get(k, d))
    phrase = str(src("searchPhrase", "") or "").lower()
    if phrase:
        tokens = phrase.split()

        def hit(row: dict[str, Any]) -> bool:
            hay = " ".join(str(v) for v in row.values()).lower()
            return all(t in hay for t in tokens)

        rows = [r for r in rows if hit(r)]
    count = int(src("rowCount", -1 if model_search else 9999) or -1)
    current = int(src("current", 1) or 1)
    total = len(rows)
    sel = rows if count < 0 else rows[(current - 1) * count : current * count]
    return {"total": total, "rowCount": len(sel), "current": current, "rows": sel}


__all__ = ["build_routes", "ipaddress"]
