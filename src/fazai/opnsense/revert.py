"""Revert the firewall's configuration to an earlier revision from its own history.

Core keeps every saved config.xml in ``/conf/backup/config-<time>.xml`` and lists them with
``core/backup/backups/this`` (newest first). ``core/backup/revertBackup/{id}`` (every series; POST-only
from 26.1, where a GET answers ``{"status": "failed"}``) copies that file over config.xml and saves it
as a new revision. Nothing is reloaded: the running services keep their settings until they are
applied, restarted or the firewall reboots.

A backup FazAI keeps on this machine (``fazai opnsense backup pull``) is the download of a history
file, byte for byte, so it is found on the firewall again by its SHA-256. Before a revert FazAI pulls
a fresh backup of the current configuration and journals the revision it replaced, so the revert can
itself be reverted.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from typing import TYPE_CHECKING, Any

from fazai.opnsense import errors as E
from fazai.opnsense.diff import Change, Result

if TYPE_CHECKING:
    from fazai.opnsense.firewall import Firewall

_FW_ID = re.compile(r"^config-[0-9._]+\.xml$")
_DIFF_LINES = 60


async def history(fw: Firewall) -> list[dict[str, Any]]:
    """The firewall's configuration history (``core/backup/backups/this``), newest first."""
    reply = await fw.client.get("core/backup/backups/this")
    items = reply.get("items") if isinstance(reply, dict) else None
    return [i for i in items or [] if isinstance(i, dict) and i.get("id")]


async def _download(fw: Firewall, bid: str) -> bytes:
    return await fw.client.get_raw(f"core/backup/download/this/{bid}")


async def resolve(fw: Firewall, ident: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The history entry ``ident`` names: a firewall id (``config-<time>.xml``) or a backup kept on
    this machine (id, unique prefix, ``latest``/``previous``), found by its SHA-256."""
    ident = ident.strip()
    if _FW_ID.match(ident):
        for item in items:
            if item["id"] == ident:
                return item
        recent = ", ".join(i["id"] for i in items[:5]) or "none"
        raise E.OperationFailed(
            f"the firewall has no configuration revision {ident!r} (newest: {recent}); "
            "see `fazai opnsense backup history`."
        )
    local = fw.backups.get(ident)  # a clear error for an unknown local id
    for item in items:
        if hashlib.sha256(await _download(fw, item["id"])).hexdigest() == local.sha256:
            return {**item, "local": local.id}
    raise E.OperationFailed(
        f"backup {local.id} (sha256 {local.sha256[:16]}) is no longer in the firewall's configuration "
        f"history ({len(items)} revisions kept). Restore it in the GUI (System → Configuration → "
        "Backups → Restore) from the file FazAI keeps: `fazai opnsense backup show "
        f"{local.id}`."
    )


async def revert(fw: Firewall, ident: str, *, dry_run: bool = False) -> Result:
    """Revert config.xml to the history entry ``ident`` (see :func:`resolve`).

    Plans the change with a diff of the two revisions; then pulls a fresh backup of the current
    configuration, reverts, checks the firewall's answer and journals the revision it replaced."""
    items = await history(fw)
    if not items:
        raise E.OperationFailed(
            "the firewall lists no configuration history (core/backup/backups/this); the API user needs "
            "the 'Diagnostics: Configuration History' privilege."
        )
    target = await resolve(fw, ident, items)
    current = items[0]
    meta = lambda i: {"revision": i["id"], "description": i.get("description", "")}  # noqa: E731
    if target["id"] == current["id"]:
        ch = Change("config", target["id"], "noop", meta(current), meta(current),
                    note="already the current configuration")  # fmt: skip
        return Result([ch])
    old = (await _download(fw, current["id"])).decode(errors="replace").splitlines()
    new = (await _download(fw, target["id"])).decode(errors="replace").splitlines()
    diff = list(difflib.unified_diff(old, new, current["id"], target["id"], lineterm="", n=1))
    note = "config.xml only: nothing is reloaded until you apply, restart the services or reboot"
    ch = Change("config", target["id"], "rollback", meta(current), meta(target), dry_run=dry_run, note=note)
    undo = {
        "op": "config_revert",
        "backup": current["id"],
        "cli": f"fazai opnsense backup revert {current['id']}",
    }
    res = Result([ch], data={"diff": diff[:_DIFF_LINES], "diff_lines": len(diff), "undo": undo})
    if dry_run:
        return res
    fresh = await fw.backup(note=f"before revert to {target['id']}")
    res.data["backup_before"] = fresh.data["id"]
    reply = await fw.client.post(f"core/backup/revertBackup/{target['id']}")
    status = reply.get("status") if isinstance(reply, dict) else None
    if status == "not_found":
        raise E.OperationFailed(
            f"the firewall no longer has revision {target['id']} (it was pruned meanwhile); nothing "
            "was changed. See `fazai opnsense backup history`."
        )
    if status != "reverted":
        raise E.OperationFailed(f"core/backup/revertBackup/{target['id']}: not reverted ({reply!r})")
    fw.journal.record(
        "config_revert", target["id"], undo, previous=current["id"], backup_before=fresh.data["id"]
    )
    res.notes.append(f"reverted; to undo: {undo['cli']}")
    return res
