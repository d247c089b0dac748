"""Operator tools for the firewall as a system: CARP status, firmware check / update / progress,
the configuration history and revert, service restarts.

Risk classes (judged by :mod:`fazai.safety`):

- ``carp_status``, ``firmware_progress``, ``backup_history``: read_only, they only read.
- ``firmware_check``: changes_state. It changes no configuration and no running service, but the
  firewall fetches from its mirror and rewrites its package catalogue, and the job holds the firmware
  lock (an update an admin starts meanwhile is refused) — the same class the shell policy gives
  ``pkg update`` / ``apt-get update``. ``--yes`` may run it; the read-only ``opnsense.firmware``
  answers from the last check without asking.
- ``firmware_update``: destructive and security-critical: it replaces packages and may reboot the
  firewall (the network through it goes down). An operator's explicit approval, never ``--yes``.
- ``config_revert``: destructive and security-critical: it replaces the whole configuration.
- ``service_restart``: changes_state; security-critical for pf (a restart is a filter reload that makes
  staged rules live with no rollback timer), the web GUI, SSH, configd and routing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fazai.opnsense import firmware as fwm
from fazai.opnsense import reads, revert, services
from fazai.opnsense.diff import Result
from fazai.opnsense.firewall import Firewall
from fazai.opnsense.tooldef import _DRY, _STR, RiskClass, ToolContext, ToolDef, _always, _schema, check_args

_WAIT = {"type": "integer", "description": "seconds to follow the job (1–600; default 50)"}
Verify = Callable[[Firewall, dict[str, Any], dict[str, Any]], Awaitable[dict[str, Any]]]


def _ops_tool(
    name: str,
    description: str,
    risk: RiskClass,
    inputs: dict[str, Any],
    *,
    critical: Callable[[dict[str, Any]], str | None] | None = None,
    verify: Verify | None = None,
):
    """Like :func:`fazai.opnsense.tooldef._tool`, and the function also gets the context (progress)."""

    def deco(fn: Callable[[Firewall, dict[str, Any], bool, ToolContext], Awaitable[Any]]) -> ToolDef:
        async def run(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
            check_args(inputs, args)
            fw = await ctx.get_firewall(args.get("firewall"))
            dry = bool(args.get("dry_run", False)) or ctx.dry_run
            out = await fn(fw, args, dry, ctx)
            return out.to_dict() | {"dry_run": dry} if isinstance(out, Result) else out

        return ToolDef(name, description, inputs, risk, run, critical, verify)

    return deco


def _wait_s(a: dict[str, Any]) -> float:
    return float(max(1, min(int(a.get("wait_s", 50)), 600)))


@_ops_tool(
    "opnsense.carp_status",
    "CARP / virtual IP status: each VIP's state (MASTER, BACKUP, INIT, DISABLED), demotion, "
    "maintenance mode.",
    "read_only",
    _schema([]),
)
async def _carp(fw: Firewall, a: dict[str, Any], dry: bool, ctx: ToolContext) -> dict[str, Any]:
    return {"carp": await reads.carp_status(fw)}


@_ops_tool(
    "opnsense.firmware_progress",
    "The running (or last) firmware job: running/done/reboot, the log's last lines, "
    "whether the lock is held.",
    "read_only",
    _schema([]),
)
async def _progress(fw: Firewall, a: dict[str, Any], dry: bool, ctx: ToolContext) -> dict[str, Any]:
    return {"firmware_job": await fwm.progress_of(fw)}


@_ops_tool(
    "opnsense.backup_history",
    "The firewall's own configuration history (revision id, time, description), newest first.",
    "read_only",
    _schema([], limit={"type": "integer", "description": "most revisions (default 20)"}),
)
async def _history(fw: Firewall, a: dict[str, Any], dry: bool, ctx: ToolContext) -> dict[str, Any]:
    items = await revert.history(fw)
    keep = ("id", "time", "description", "username")
    return {"revisions": [{k: i.get(k) for k in keep} for i in items[: max(1, int(a.get("limit", 20)))]]}


async def _verify_check(fw: Firewall, a: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    st = (result.get("data") or {}).get("firmware") or {}
    ok = st.get("status") in ("none", "update", "upgrade")
    return {"ok": ok, "method": "the firmware status after the check", "status": st.get("status")}


@_ops_tool(
    "opnsense.firmware_check",
    "Check the firewall's mirror for firmware updates and wait for the result (pending packages, reboot).",
    "changes_state",  # refreshes the package catalogue and holds the firmware lock; changes no config
    _schema([], wait_s=_WAIT, **_DRY),
    verify=_verify_check,
)
async def _check(fw: Firewall, a: dict[str, Any], dry: bool, ctx: ToolContext) -> Result:
    return await fwm.check(fw, dry_run=dry, timeout_s=_wait_s(a), progress=ctx.log)


async def _verify_update(fw: Firewall, a: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    data = result.get("data") or {}
    state = data.get("job")
    ok = state == "done" or (state == "reboot" and bool(data.get("api_back")))
    return {
        "ok": ok,
        "method": "the update job's end (and, after a reboot, the API answering on a new connection)",
        "status": state,
        "api_back": data.get("api_back"),
    }


@_ops_tool(
    "opnsense.firmware_update",
    "Install the update (kind=update) or major upgrade (kind=upgrade) the last firmware check found; "
    "follows its progress. May REBOOT the firewall.",
    "destructive",
    _schema([], kind={"type": "string", "enum": list(fwm.KINDS)}, wait_s=_WAIT, **_DRY),
    critical=_always("a firmware update replaces packages and may reboot the firewall"),
    verify=_verify_update,
)
async def _update(fw: Firewall, a: dict[str, Any], dry: bool, ctx: ToolContext) -> Result:
    return await fwm.update(fw, a.get("kind", "update"), dry_run=dry, timeout_s=_wait_s(a), progress=ctx.log)


_REVISION = re.compile(rb"<revision>.*?</revision>", re.S)


async def _verify_revert(fw: Firewall, a: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The newest revision now has the target's content (its <revision> block is new by design)."""
    target = next((c["name"] for c in result.get("changes") or []), "")
    items = await revert.history(fw)
    if not target or not items:
        return {"ok": False, "method": "the firewall's newest revision", "error": "no history"}

    async def body(bid: str) -> str:
        raw = await fw.client.get_raw(f"core/backup/download/this/{bid}")
        return hashlib.sha256(_REVISION.sub(b"", raw)).hexdigest()

    same = await body(items[0]["id"]) == await body(target)
    method = "the newest revision's content equals the reverted-to revision"
    return {"ok": same, "method": method, "newest": items[0]["id"]}


@_ops_tool(
    "opnsense.config_revert",
    "Revert config.xml to an earlier revision: a firewall history id (config-<time>.xml, see "
    "opnsense.backup_history) or a backup kept by FazAI. A fresh backup is taken first; nothing is reloaded.",
    "destructive",
    _schema(["backup"], backup=_STR, **_DRY),
    critical=_always("replaces the firewall's whole configuration"),
    verify=_verify_revert,
)
async def _revert(fw: Firewall, a: dict[str, Any], dry: bool, ctx: ToolContext) -> Result:
    return await revert.revert(fw, a["backup"], dry_run=dry)


async def _verify_restart(fw: Firewall, a: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    sid = next((c["name"] for c in result.get("changes") or []), "")
    rows = {str(r.get("id")): r for r in await services.list_services(fw)}
    row = rows.get(sid) or {}
    ok = str(row.get("running")) == "1"
    return {"ok": ok, "method": "the service is running afterwards", "service": sid}


@_ops_tool(
    "opnsense.service_restart",
    "Restart one firewall service by name or name/id (see opnsense.system what=services).",
    "changes_state",  # a routine restart; pf, web GUI, SSH, configd and routing are security-critical
    _schema(["service"], service=_STR, **_DRY),
    critical=services.critical_reason,
    verify=_verify_restart,
)
async def _restart(fw: Firewall, a: dict[str, Any], dry: bool, ctx: ToolContext) -> Result:
    return await services.restart(fw, a["service"], dry_run=dry)


OPS_TOOLS: list[ToolDef] = [_carp, _progress, _history, _check, _update, _revert, _restart]
"""The system-operation tools, appended to :data:`fazai.opnsense.tools.TOOLS`."""
