"""System operations of the simulated firewall: CARP / virtual IP status, the firmware check and
update with its progress log, the configuration history (list, download, revert) and service restarts.

Shapes and per-version behaviour follow opnsense/core (read, not copied):
``Diagnostics/Api/InterfaceController::getVipStatusAction`` (+ ``carp_global_status.php``),
``Core/Api/FirmwareController`` (check/status/update/upgrade/running/upgradestatus; the same on
25.1–26.7), ``Core/Api/BackupController`` (``revertBackup`` on every series; POST-only from 26.1,
where a GET answers ``{"status": "failed"}``) and ``Core/Api/ServiceController`` (restart answers
``{"result": "ok"}`` for any name: core does not check it; POST-only).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .app import RawReply, Req, Simulator, UserException, new_uuid
from .diagnostics import search_records

# (name, id, description, locked, running): as core's `service list` renders on a small install.
SERVICES = [
    ("configd", "", "System Configuration Daemon", 1, 1),
    ("cron", "", "Cron", 0, 1),
    ("dpinger", "WAN_GW", "Gateway Monitor (WAN_GW)", 0, 1),
    ("login", "", "Users and Groups", 1, 1),
    ("ntpd", "", "Network Time Daemon", 0, 1),
    ("openssh", "", "Secure Shell", 0, 1),
    ("pf", "", "Packet Filter", 1, 1),  # nocheck: reported locked
    ("routing", "", "System routing", 1, 1),
    ("suricata", "", "Intrusion Detection", 0, 1),
    ("syslog-ng", "", "Syslog-ng Daemon", 0, 1),
    ("unbound", "", "Unbound DNS", 0, 1),
    ("webgui", "", "Web GUI", 1, 1),
    ("wireguard", "", "WireGuard", 0, 0),
]
NO_CHECK = "Firmware status requires to check for update first to provide more information."
CHECK_LOG = [
    "***GOT REQUEST TO CHECK FOR UPDATES***",
    "Fetching changelog information, please wait... done",
    "Updating OPNsense repository catalogue...",
    "OPNsense repository is up to date.",
    "Checking integrity... done (0 conflicting)",
    "***DONE***",
]


def update_log(kind: str, pkgs: list[dict[str, str]], reboot: bool) -> list[str]:
    """The progress log of ``update.sh`` / ``upgrade.sh``, one chunk per poll."""
    lines = [f"***GOT REQUEST TO {kind.upper()}***", "Updating OPNsense repository catalogue..."]
    for p in pkgs:
        lines.append(f"[1/1] Upgrading {p['name']} from {p['current_version']} to {p['new_version']}...")
    lines.append("Writing web GUI configuration...done.")
    lines.append("***REBOOT***" if reboot else "***DONE***")
    return lines


@dataclass
class OpsState:
    """What the system operations keep; tests set ``available``, ``vips`` and ``hang``."""

    # Updates the mirror offers: {"kind": "update"|"upgrade", "packages": [...], "needs_reboot": "0"|"1"}.
    available: dict[str, Any] | None = None
    product_check: dict[str, Any] | None = None  # /tmp/pkg_upgrade.json, written by a check
    job: list[str] = field(default_factory=list)  # log chunks still to come
    log: list[str] = field(default_factory=list)  # the lock file's content (what upgradestatus reads)
    job_kind: str = ""
    hang: bool = False  # the running job never finishes (a stuck mirror)
    reboots: int = 0
    updates_run: list[str] = field(default_factory=list)
    restarts: list[tuple[str, str]] = field(default_factory=list)
    # Virtual IPs in config (Interfaces: Virtual IPs) and their live CARP state per vhid.
    vips: list[dict[str, str]] = field(default_factory=list)
    carp_state: dict[str, str] = field(default_factory=dict)  # vhid → MASTER/BACKUP/INIT
    carp_demotion: int = 0
    carp_allow: int = 1
    carp_maintenance: bool = False
    backup_state: list[dict[str, Any]] = field(default_factory=list)  # model snapshot per history entry


def history_ids(sim: Simulator) -> list[str]:
    """``config-<microtime>.xml`` per history entry, oldest first (a clash gets a suffix, as core does)."""
    seen: set[str] = set()
    out = []
    for i, (t, _xml) in enumerate(sim.backups):
        bid = f"config-{t:.4f}.xml"
        if bid in seen:
            bid = f"config-{t:.4f}_{i}.xml"
        seen.add(bid)
        out.append(bid)
    return out


def _revision(xml: str) -> str:
    m = re.search(r"<description>(.*?)</description>", xml[:2000])
    return m.group(1) if m else ""


def snapshot(sim: Simulator) -> dict[str, Any]:
    """The staged models a history entry holds (what a revert restores)."""
    return {
        "cols": {n: copy.deepcopy(c.items) for n, c in sim.cols.items()},
        "dnsbl_legacy": dict(sim.dnsbl_legacy),
    }


def register(sim: Simulator, add: Callable[..., None]) -> None:
    """Add the system-operation endpoints (``add(path, fn, lo, hi, since, until)``)."""

    # sim.ops is read per request: reset() replaces it, and the route table is built once.
    def check_write(req: Req) -> None:
        if req.key.readonly:
            raise UserException(f"User {req.key.user} denied for write access (user-config-readonly set)")

    # ------------------------------------------------------------------ CARP / virtual IPs
    def vip_status(req: Req) -> Any:
        records = []
        for vip in sim.ops.vips:
            if not vip.get("vhid"):
                continue
            live = sim.ops.carp_state.get(vip["vhid"]) if sim.ops.carp_allow else None
            iface = vip.get("interface", "")
            rec = {
                "interface": {"wan": "WAN", "lan": "LAN", "opt1": "DMZ"}.get(iface, iface.upper()),
                "vhid": vip["vhid"],
                "advbase": vip.get("advbase", "1"),
                "advskew": vip.get("advskew", "0"),
                "subnet": vip["subnet"],
                "status": live or "DISABLED",
                "mode": vip.get("mode", "carp"),
            }
            rec["status_txt"] = rec["status"] if rec["status"] in ("MASTER", "BACKUP", "INIT") else "DISABLED"
            freq = f"{rec['vhid']} (freq. {rec['advbase']}/{rec['advskew']})"
            rec["vhid_txt"] = freq if rec["mode"] == "carp" else rec["vhid"]
            records.append(rec)
        modes = req.post.get("mode")
        if modes:
            records = [r for r in records if r["mode"] in modes]
        carps = any(v.get("mode") == "carp" for v in sim.ops.vips)
        msg = ""
        if not sim.ops.carp_maintenance and sim.ops.carp_demotion:
            msg = (
                "CARP has detected a problem and this unit has been demoted to BACKUP status.<br />"
                "Check link status on all interfaces with configured CARP VIPs."
            )
        elif not carps:
            msg = "Could not locate any defined CARP interfaces."
        return {
            **search_records(req, records),
            "carp": {
                "demotion": str(sim.ops.carp_demotion),
                "allow": str(sim.ops.carp_allow),
                "maintenancemode": sim.ops.carp_maintenance,
                "status_msg": msg,
            },
        }

    add("diagnostics/interface/getVipStatus", vip_status)

    # ------------------------------------------------------------------ firmware
    def product() -> dict[str, Any]:
        return product_block(sim)

    def run_check() -> None:
        avail = sim.ops.available or {}
        pkgs = list(avail.get("packages") or [])
        kind = avail.get("kind", "update")
        sim.ops.product_check = {
            "connection": "ok",
            "repository": "ok",
            "last_check": "Thu Dec  3 10:00:00 UTC 2026",
            "product_target": "opnsense",
            "product_version": sim.version_text,
            "needs_reboot": avail.get("needs_reboot", "0"),
            "upgrade_needs_reboot": "1",
            "download_size": f"{len(pkgs) * 12}MiB" if pkgs else "",
            "upgrade_packages": pkgs if kind == "update" else [],
            "upgrade_sets": pkgs if kind == "upgrade" else [],
            "new_packages": [],
            "reinstall_packages": [],
            "remove_packages": [],
            "downgrade_packages": [],
            "upgrade_major_version": avail.get("major", "") if kind == "upgrade" else "",
            "upgrade_major_message": "",
        }

    def start(kind: str, lines: list[str]) -> dict[str, Any]:
        if sim.ops.job:  # flock -n fails: the launcher exits, the running job's log stays
            return {"msg_uuid": new_uuid(), "status": "ok"}
        sim.ops.job_kind = kind
        sim.ops.log = [lines[0]]
        sim.ops.job = lines[1:]
        return {"msg_uuid": new_uuid(), "status": "ok"}

    def advance() -> None:
        """One poll's worth of progress; the job's end runs its effect."""
        if not sim.ops.job or sim.ops.hang:
            return
        sim.ops.log.append(sim.ops.job.pop(0))
        if sim.ops.job:
            return
        if sim.ops.job_kind == "check":
            run_check()
        else:
            sim.ops.updates_run.append(sim.ops.job_kind)
            sim.ops.available = None  # installed: the mirror has nothing newer
            if sim.ops.log[-1] == "***REBOOT***":
                sim.ops.reboots += 1

    def fw_check(req: Req) -> Any:
        if not req.is_post:
            return {"status": "failure"}
        sim.ops.product_check = None  # check.sh removes /tmp/pkg_upgrade.json first
        return start("check", CHECK_LOG)

    def fw_status(req: Req) -> Any:
        if req.is_post and not sim.ops.job:  # a synchronous probe first
            run_check()
        check = sim.ops.product_check
        if check is None:
            return {
                "product": product(),
                "status_msg": NO_CHECK,
                "status": "none",
            }
        out = {**check, "product": product()}
        pkgs, sets = check["upgrade_packages"], check["upgrade_sets"]
        out["all_packages"] = {
            p["name"]: {"reason": "upgrade", "old": p["current_version"], "new": p["new_version"],
                        "repository": "OPNsense", "name": p["name"]} for p in pkgs
        }  # fmt: skip
        out["all_sets"] = {
            p["name"]: {"reason": "upgrade", "old": p["current_version"], "new": p["new_version"],
                        "repository": "OPNsense", "name": p["name"]} for p in sets
        }  # fmt: skip
        active, status, reboot = (pkgs, "update", check["needs_reboot"]) if pkgs else (
            sets, "upgrade", check["upgrade_needs_reboot"]
        )  # fmt: skip
        if not active:
            out["status_msg"] = "There are no updates available on the selected mirror."
            out["status"] = "none"
            return out
        n = len(active)
        out["status_msg"] = (
            f"There {'is' if n == 1 else 'are'} {n} update{'' if n == 1 else 's'} available, "
            f"total download size is {n * 12.0:.1f}MiB."
        )
        if reboot == "1":
            out["status_msg"] += " This update requires a reboot."
        out["status_reboot"] = "1" if reboot == "1" else "0"
        out["status"] = status
        return out

    def fw_action(kind: str) -> Callable[[Req], Any]:
        def fn(req: Req) -> Any:
            if not req.is_post:
                return {"status": "failure"}
            sim.ops.product_check = None  # `firmware flush`
            avail = sim.ops.available or {}
            pkgs = list(avail.get("packages") or [])
            reboot = kind == "upgrade" or avail.get("needs_reboot") == "1"
            return start(kind, update_log(kind, pkgs, reboot))

        return fn

    def fw_upgradestatus(req: Req) -> Any:
        advance()
        text = "\n".join(sim.ops.log)
        if not text:
            return {"status": "error", "log": ""}
        status = "done" if "***DONE***" in text else "reboot" if "***REBOOT***" in text else "running"
        return {"status": status, "log": text}

    add("core/firmware/check", fw_check)
    add("core/firmware/status", fw_status)
    add("core/firmware/update", fw_action("update"))
    add("core/firmware/upgrade", fw_action("upgrade"))
    add("core/firmware/running", lambda req: {"status": "busy" if sim.ops.job else "ready"})
    add("core/firmware/upgradestatus", fw_upgradestatus)

    # ------------------------------------------------------------------ configuration history
    def backups_list(req: Req, host: str) -> Any:
        if host != "this":
            return {"items": []}
        items = [
            {
                "time": f"{t:.4f}",
                "time_iso": "",
                "description": _revision(xml),
                "username": "root@127.0.0.1",
                "filesize": len(xml),
                "id": bid,
            }
            for bid, (t, xml) in zip(history_ids(sim), sim.backups, strict=True)
        ]
        return {"items": items[::-1]}  # newest first (saved in time order; the test clock may stand still)

    def download(req: Req, host: str, backupfile: str | None = None) -> Any:
        if host != "this":
            return RawReply(b"", "application/octet-stream")
        if not sim.backups:
            return RawReply(sim.config_xml().encode(), "application/octet-stream")
        ids = history_ids(sim)
        for bid, (_t, xml) in reversed(list(zip(ids, sim.backups, strict=True))):
            if backupfile is None or backupfile == bid:
                return RawReply(xml.encode(), "application/octet-stream")
        return RawReply(b"", "text/html")  # core sends nothing for an unknown file

    def revert(req: Req, backup: str) -> Any:
        check_write(req)
        if sim.version >= (26, 1) and not req.is_post:
            return {"status": "failed"}
        ids = history_ids(sim)
        if backup not in ids:
            return {"status": "not_found"}
        state = sim.ops.backup_state[ids.index(backup)]
        for name, items in state["cols"].items():
            sim.cols[name].items = copy.deepcopy(items)
        sim.dnsbl_legacy = dict(state["dnsbl_legacy"])
        sim.save_config("revert")  # Config::save(): a new revision; nothing is reloaded
        return {"status": "reverted"}

    add("core/backup/backups", backups_list, 1, 1)
    add("core/backup/download", download, 1, 2)
    add("core/backup/revertBackup", revert, 1, 1)

    # ------------------------------------------------------------------ services
    def services(req: Req) -> Any:
        rows = [
            {"id": f"{n}/{i}" if i else n, "locked": lk, "running": run, "description": d, "name": n}
            for n, i, d, lk, run in SERVICES
        ]
        return search_records(req, rows)

    def restart(req: Req, name: str, sid: str = "") -> Any:
        if not req.is_post:
            return {"result": "failed"}
        sim.ops.restarts.append((name, sid))  # configd `service restart`: no check that it exists
        if name == "pf":  # pf's restart is `filter reload`: every staged rule edit goes live
            sim.filter_reload(aliases=True)
        return {"result": "ok"}

    add("core/service/search", services)
    add("core/service/restart", restart, 1, 2)


def product_block(sim: Simulator) -> dict[str, Any]:
    """The ``product`` block core puts in firmware answers (info, status), one for every endpoint."""
    return {
        "product_name": "OPNsense",
        "product_version": sim.version_text,
        "product_abi": sim.version_text,
        "product_arch": "amd64",
        "product_series": sim.version_text,
        "product_mirror": "https://pkg.opnsense.org/FreeBSD:14:amd64/" + sim.version_text,
        "product_check": sim.ops.product_check,
    }
