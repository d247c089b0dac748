"""Safe apply: make filter changes live so that a change that cuts the operator off undoes itself.

≤ 26.1 the firewall has a rollback timer: ``savepoint`` records the Filter model (rules, source
NAT, 1:1) and ``apply/{revision}`` starts a 60 s timer *before* it reloads the filter; unless
``cancelRollback/{revision}`` comes in time, the firewall restores the savepoint by itself.

The order matters. Anything that reloads the filter makes every staged rule edit live — and
``firewall/alias/reconfigure`` runs ``filter reload skip_alias`` before it refreshes the tables —
so nothing may reload before the timer is armed: savepoint → change → ``apply/{rev}`` → alias
reconfigure (now inside the window) → verify over a NEW connection → cancel. A transport error
anywhere after the savepoint ends in a reported rollback path, never an escaped exception.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fazai.opnsense import errors as E
from fazai.opnsense.backups import pull_backup
from fazai.opnsense.diff import Change, Result
from fazai.opnsense.model import apply_ok

if TYPE_CHECKING:
    from fazai.opnsense.firewall import Firewall

Verify = Callable[[], Awaitable[bool]]
Changer = Callable[[], Awaitable[Result]]


async def api_alive(fw: Firewall) -> bool:
    """True if a NEW connection to the API gets an answer (not the pooled keep-alive one: pf
    keeps established states across a reload, so only a fresh connection proves access)."""
    return await fw.client.probe_new_connection("core/system/status")


async def safe_apply(
    fw: Firewall,
    verify: Verify | None = None,
    *,
    change: Changer | None = None,
    dry_run: bool = False,
    revert_now: bool = True,
    aliases: bool = True,
) -> Result:
    """See the module docstring; ``status`` in ``result.data`` is ``applied``, ``rolled_back``,
    ``rollback_pending`` (the firewall's timer restores the savepoint) or, on 26.7+ (no savepoint:
    a config backup first), ``verify_failed`` / ``apply_unanswered``."""
    caps = await fw.client.capabilities()
    res = Result()
    if dry_run:
        if change is not None:
            res.changes += (await change()).changes
        res.changes.append(Change("apply", "filter", "apply", dry_run=True, note="safe apply"))
        res.notes.append(
            "savepoint + rollback timer"
            if caps.savepoint
            else "config backup first (no savepoint on this version)"
        )
        return res
    if not caps.savepoint:
        return await _apply_with_backup(fw, res, verify, change, aliases, str(caps.version))
    sp = await fw.client.post("firewall/filter/savepoint")
    rev = str(sp.get("revision", "")) if isinstance(sp, dict) else ""
    if not rev:
        raise E.OperationFailed(f"filter savepoint failed ({sp!r}); nothing was applied.")
    res.data["revision"] = rev
    if change is not None:
        # Only staged here: nothing reloads the filter until the timer is armed below. A failure
        # leaves the edits staged, not live; the savepoint revision is in the message.
        try:
            res.changes += (await change()).changes
        except E.OPNsenseError as e:
            e.args = (
                f"{e} (nothing was applied; staged edits may remain, savepoint {rev} has the rules before)",
            )
            raise
    # The timer starts before the reload (configd `filter rollback_timer` runs in the background).
    try:
        reply = await fw.client.post(f"firewall/filter/apply/{rev}")
    except E.TransportError as e:
        res.changes.append(Change("apply", "filter", "apply", note=f"rollback revision {rev}"))
        res.notes.append(f"the filter apply got no answer ({e})")
        return await _roll_back(fw, res, rev, revert_now)
    res.changes.append(Change("apply", "filter", "apply", note=f"rollback revision {rev}"))
    applied = apply_ok(reply)
    if not applied:
        res.notes.append(f"the filter apply reported a failure ({reply!r})")
    if applied and aliases:
        # Inside the 60 s window now: this second reload is covered by the timer too.
        try:
            res.changes += (await fw.apply(["alias"])).changes
            res.notes.append("aliases reconfigured after the rollback timer was armed")
        except E.OPNsenseError as e:
            res.notes.append(f"alias reconfigure failed: {e}")
            applied = False
    ok = applied and await _verify(fw, verify, res)
    if ok:
        try:
            await fw.client.post(f"firewall/filter/cancelRollback/{rev}")
        except E.OPNsenseError as e:
            # The timer keeps running: the firewall restores the savepoint within 60 s.
            res.notes.append(f"cancelRollback failed ({e}): the firewall will restore savepoint {rev}")
            res.data["status"] = "rollback_pending"
            return res
        res.data["status"] = "applied"
        return res
    return await _roll_back(fw, res, rev, revert_now)


async def _roll_back(fw: Firewall, res: Result, rev: str, revert_now: bool) -> Result:
    res.changes.append(Change("apply", "filter", "rollback", note=f"to revision {rev}"))
    if revert_now and await api_alive(fw):
        try:
            r = await fw.client.post(f"firewall/filter/revert/{rev}")
        except E.OPNsenseError as e:
            res.notes.append(f"revert/{rev} failed ({e}); the firewall's timer restores savepoint {rev}")
            res.data["status"] = "rollback_pending"
            return res
        res.data["status"] = "rolled_back"
        status = r.get("status") if isinstance(r, dict) else r
        res.notes.append(f"verify failed: reverted the filter rules to savepoint {rev} ({status})")
        return res
    res.data["status"] = "rollback_pending"
    res.notes.append(f"verify failed: the firewall restores savepoint {rev} by itself within 60 s")
    return res


async def _apply_with_backup(
    fw: Firewall, res: Result, verify: Verify | None, change: Changer | None, aliases: bool, version: str
) -> Result:
    """26.7+: no savepoint/rollback exists; a config.xml backup is taken first and reported."""
    backup = await pull_backup(fw.client, fw.backups, note="before apply")
    res.notes.append(
        f"OPNsense {version} has no savepoint/rollback: took config backup {backup.id} first; "
        "there is no automatic rollback on this version"
    )
    res.data["backup"] = backup.id
    if change is not None:
        res.changes += (await change()).changes
    try:
        if aliases:
            res.changes += (await fw.apply(["alias"])).changes
        res.changes += (await fw.apply(["filter"])).changes
    except E.TransportError as e:
        res.notes.append(
            f"the apply got no answer ({e}); restore backup {backup.id} from the console if locked out"
        )
        res.data["status"] = "apply_unanswered"
        return res
    ok = await _verify(fw, verify, res)
    res.data["status"] = "applied" if ok else "verify_failed"
    if not ok:
        res.notes.append(f"verify failed: compare with backup {backup.id} (`fazai opnsense backup diff`)")
    return res


async def _verify(fw: Firewall, verify: Verify | None, res: Result) -> bool:
    if not await api_alive(fw):
        res.notes.append("a new connection to the API got no answer after the apply")
        return False
    if verify is not None:
        try:
            ok = bool(await verify())
        except Exception as e:  # the caller's check failing counts as "not verified"
            res.notes.append(f"the verify check raised {type(e).__name__}: {e}")
            return False
        if not ok:
            res.notes.append("the verify check returned false")
        return ok
    return True
