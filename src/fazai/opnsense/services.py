"""Restart one service on the firewall (``core/service/restart/{name}[/{id}]``, POST-only).

Core restarts whatever name it is given and answers ``{"result": "ok"}`` even for a name no plugin
provides, so FazAI checks the name against ``core/service/search`` first. Some restarts can cut the
operator off or change what the firewall lets through; :func:`critical_reason` says which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fazai.opnsense import errors as E
from fazai.opnsense.diff import Change, Result

if TYPE_CHECKING:
    from fazai.opnsense.firewall import Firewall

# Why restarting each of these needs an operator (never --yes): it is on the management path or it
# changes the filter. pf's restart is `filter reload`: every staged rule edit goes live, no rollback timer.
CRITICAL = {
    "pf": "restarting the packet filter reloads it: staged rule changes go live with no rollback timer",
    "webgui": "restarting the web GUI takes the API and the GUI down; a bad listen/TLS setting locks you out",
    "openssh": "restarting SSH can lock out the management path if its settings are wrong",
    "configd": "every API action goes through configd; a failed restart leaves the firewall unmanageable",
    "routing": "restarting routing drops and re-adds routes, the management path's included",
}


def service_key(service: str) -> tuple[str, str]:
    """``name`` and instance ``id`` of ``"name"`` or ``"name/id"``, normalised as the lookup does
    (so the safety check and the restart always talk about the same service)."""
    name, _, sid = service.strip().partition("/")
    return name.strip().lower(), sid.strip()


def critical_reason(args: dict[str, Any]) -> str | None:
    """Why restarting ``args["service"]`` is security-critical, or None."""
    return CRITICAL.get(service_key(str(args.get("service", "")))[0])


async def list_services(fw: Firewall) -> list[dict[str, Any]]:
    """Services with id (``name`` or ``name/instance``), description, running and locked."""
    reply = await fw.client.get("core/service/search")
    return [r for r in (reply.get("rows") or []) if isinstance(r, dict)] if isinstance(reply, dict) else []


def _find(rows: list[dict[str, Any]], service: str) -> dict[str, Any]:
    name, sid = service_key(service)
    hits = [r for r in rows if str(r.get("name", "")).lower() == name]
    if sid:
        hits = [r for r in hits if str(r.get("id", "")).lower() == f"{name}/{sid.lower()}"]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join(str(r.get("id")) for r in rows) or "none"
    if not hits:
        raise E.OperationFailed(f"the firewall has no service {service!r}; its services: {known}.")
    ids = ", ".join(str(r.get("id")) for r in hits)
    raise E.OperationFailed(f"{service!r} has several instances ({ids}); name one as name/id.")


async def restart(fw: Firewall, service: str, *, dry_run: bool = False) -> Result:
    """Restart ``service`` (``name`` or ``name/id`` from :func:`list_services`)."""
    row = _find(await list_services(fw), service)
    name, _, sid = str(row.get("id", "")).partition("/")
    path = f"core/service/restart/{name}" + (f"/{sid}" if sid else "")
    running = str(row.get("running")) == "1"
    note = CRITICAL.get(name, "") or path
    ch = Change("service", str(row["id"]), "apply", {"running": running}, {"running": True},
                dry_run=dry_run, note=note)  # fmt: skip
    res = Result([ch], data={"service": row})
    if dry_run:
        return res
    fw.journal.record("service_restart", str(row["id"]), None)
    reply = await fw.client.post(path)
    if not isinstance(reply, dict) or reply.get("result") != "ok":
        raise E.OperationFailed(f"{path}: the firewall did not restart it ({reply!r})")
    return res
