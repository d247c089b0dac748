"""Firmware: check for updates, run an update or a major upgrade, and follow its progress.

The endpoints are ``core/firmware/*`` (the same on 25.1–26.7). ``check``, ``update`` and ``upgrade``
are POST-only and start a background job on the firewall that holds the firmware lock;
``upgradestatus`` returns that job's log and ``running``/``done``/``reboot``. ``running`` says whether
the lock is held. An update may end in ``***REBOOT***``: the firewall then reboots, and the network
through it goes down while it does.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fazai.opnsense import errors as E
from fazai.opnsense.diff import Change, Result

if TYPE_CHECKING:
    from fazai.opnsense.firewall import Firewall

Progress = Callable[[str], Awaitable[None] | None]
KINDS = ("update", "upgrade")


class FirmwareTimeout(E.OperationFailed):
    """The firmware job did not finish in time (it may still be running on the firewall)."""


async def _say(progress: Progress | None, line: str) -> None:
    if progress is None:
        return
    out = progress(line)
    if inspect.isawaitable(out):
        await out


async def running(fw: Firewall) -> str:
    """``ready`` or ``busy`` (another firmware job holds the lock)."""
    reply = await fw.client.get("core/firmware/running")
    return str((reply or {}).get("status", "")) if isinstance(reply, dict) else ""


async def status(fw: Firewall) -> dict[str, Any]:
    """The last check's result (GET: no probe is started)."""
    reply = await fw.client.get("core/firmware/status")
    return reply if isinstance(reply, dict) else {}


async def progress_of(fw: Firewall) -> dict[str, Any]:
    """The current (or last) firmware job: ``status`` (running/done/reboot/error), its log's last
    lines, and whether the lock is held. Read-only."""
    reply = await fw.client.get("core/firmware/upgradestatus")
    reply = reply if isinstance(reply, dict) else {}
    lines = [x for x in str(reply.get("log") or "").splitlines() if x.strip()]
    state = await running(fw)
    return {"status": reply.get("status"), "running": state, "log_tail": lines[-20:]}


def summary(st: dict[str, Any]) -> dict[str, Any]:
    """What an operator reads of ``core/firmware/status``: the state, message, reboot and packages."""
    product = st.get("product") or {}
    items = st.get("all_packages") or st.get("all_sets") or {}
    rows = list(items.values()) if isinstance(items, dict) else list(items)
    return {
        "status": st.get("status"),
        "message": st.get("status_msg"),
        "version": product.get("product_version"),
        "needs_reboot": st.get("status_reboot") == "1",
        "last_check": st.get("last_check"),
        "upgrade_major_version": st.get("upgrade_major_version") or "",
        "packages": [{k: r.get(k) for k in ("name", "old", "new", "reason")} for r in rows[:50]],
    }


async def _wait(
    fw: Firewall, before: str, *, timeout_s: float, poll_s: float, progress: Progress | None, what: str
) -> tuple[str, list[str]]:
    """Poll ``upgradestatus`` until the job ends; new log lines go to ``progress``.

    ``before`` is the log as it was before the job started: core keeps the last job's log (ending in
    ``***DONE***``) until the new job rewrites it, so that log's end is not this job's end. The job
    counts as seen once the log differs or the firmware lock is held; a job that ended before the
    first poll with a log identical to the last one is taken as ended once the lock is free for a while."""
    start = time.monotonic()
    deadline = start + timeout_s
    grace = max(2 * poll_s, 1.0)
    shown = 0
    seen = False
    lines: list[str] = []
    delay = min(0.1, poll_s)  # quick first polls (a check often ends in seconds), then every poll_s
    while True:
        reply = await fw.client.get("core/firmware/upgradestatus")
        reply = reply if isinstance(reply, dict) else {}
        log = str(reply.get("log") or "")
        state = str(reply.get("status") or "")
        seen = seen or log != before
        if not seen:
            busy = await running(fw) == "busy"
            seen = busy or time.monotonic() - start >= grace
        if seen:
            lines = [x for x in log.splitlines() if x.strip()]
            for line in lines[shown:]:
                await _say(progress, line)
            shown = len(lines)
            if state in ("done", "reboot"):
                return state, lines
        if time.monotonic() >= deadline:
            tail = "; ".join(lines[-3:]) or "no log yet"
            raise FirmwareTimeout(
                f"the firmware {what} is still running after {timeout_s:g}s (last log: {tail}). It may "
                "still be working on the firewall: do not power it off; follow it with `fazai opnsense "
                "firmware progress` (tool opnsense.firmware_progress) or System → Firmware → Updates."
            )
        await asyncio.sleep(delay)
        delay = min(poll_s, delay * 1.5)


async def _ready(fw: Firewall) -> None:
    if await running(fw) == "busy":
        raise E.OperationFailed(
            "another firmware job is running on the firewall (the firmware lock is held); wait for "
            "it to finish: `fazai opnsense firmware progress`."
        )


async def check(
    fw: Firewall,
    *,
    dry_run: bool = False,
    timeout_s: float = 300.0,
    poll_s: float = 2.0,
    progress: Progress | None = None,
) -> Result:
    """Check the mirror for updates (``core/firmware/check``), wait for it, return the new status."""
    note = "core/firmware/check: the firewall refreshes its package catalogue from its mirror"
    ch = Change("firmware", "check", "apply", dry_run=dry_run, note=note)
    res = Result([ch])
    await _ready(fw)
    if dry_run:
        return res
    before = str((await fw.client.get("core/firmware/upgradestatus") or {}).get("log") or "")
    reply = await fw.client.post("core/firmware/check")
    if not isinstance(reply, dict) or reply.get("status") != "ok":
        raise E.OperationFailed(f"core/firmware/check did not start ({reply!r})")
    await _wait(fw, before, timeout_s=timeout_s, poll_s=poll_s, progress=progress, what="check")
    res.data["firmware"] = summary(await status(fw))
    res.notes.append(str(res.data["firmware"]["message"] or ""))
    return res


async def update(
    fw: Firewall,
    kind: str = "update",
    *,
    dry_run: bool = False,
    timeout_s: float = 1800.0,
    poll_s: float = 5.0,
    progress: Progress | None = None,
) -> Result:
    """Install the pending update (``update``) or major upgrade (``upgrade``) found by the last check.

    Refused when the last check found nothing of that kind (run :func:`check` first) or another
    firmware job runs. Follows the job's log until it ends; when it ends in a reboot, waits (within
    ``timeout_s``) for the API to answer again. :class:`FirmwareTimeout` when it does not end in time."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    await _ready(fw)
    st = summary(await status(fw))
    if st["status"] != kind:
        hint = (
            "run `fazai opnsense firmware check` (tool opnsense.firmware_check) first"
            if st["status"] == "none" and "check" in str(st["message"] or "")
            else f"the last check says: {st['message']}"
        )
        raise E.OperationFailed(f"no firmware {kind} is pending (status {st['status']!r}); {hint}.")
    reboot = kind == "upgrade" or st["needs_reboot"]
    pkgs = ", ".join(f"{p['name']} {p['old']} → {p['new']}" for p in st["packages"][:10])
    note = f"core/firmware/{kind}: {pkgs or 'packages'}" + (
        "; the firewall REBOOTS afterwards" if reboot else ""
    )
    ch = Change("firmware", kind, "apply", {"version": st["version"]}, None, dry_run=dry_run, note=note)
    res = Result([ch], data={"firmware": st, "reboot_expected": reboot})
    if dry_run:
        return res
    fw.journal.record(f"firmware_{kind}", str(st["version"]), None, packages=st["packages"][:50])
    before = str((await fw.client.get("core/firmware/upgradestatus") or {}).get("log") or "")
    reply = await fw.client.post(f"core/firmware/{kind}")
    if not isinstance(reply, dict) or reply.get("status") != "ok":
        raise E.OperationFailed(f"core/firmware/{kind} did not start ({reply!r})")
    started = time.monotonic()
    state, lines = await _wait(fw, before, timeout_s=timeout_s, poll_s=poll_s, progress=progress, what=kind)
    res.data.update(job=state, log_tail=lines[-20:])
    if state == "reboot":
        left = max(0.0, timeout_s - (time.monotonic() - started))
        await _say(progress, "the firewall is rebooting; waiting for its API…")
        back = await _wait_back(fw, left, poll_s)
        res.data["api_back"] = back
        res.notes.append(
            "the firewall rebooted and its API answers again" if back
            else f"the firewall is rebooting; its API did not answer within {left:.0f}s"
        )  # fmt: skip
    return res


async def _wait_back(fw: Firewall, seconds: float, poll_s: float) -> bool:
    """After a reboot: poll a NEW connection until the API answers, at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        if await fw.client.probe_new_connection(timeout_s=max(1.0, min(10.0, poll_s * 2))):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll_s)
