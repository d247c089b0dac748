"""Run one planned action (and undo it on rollback): firewalls through ``fazai.opnsense``, nodes
through their targets, notifications over HTTP and SMTP, agent sessions through the runner.

A :class:`ActionFailed` says whether trying again may help (``retryable``: the firewall or a
server did not answer) — a refused change or a failing command is not retried.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any

import httpx

from fazai.opnsense import errors as E
from fazai.playbooks.env import PlaybookEnv
from fazai.playbooks.plan import Action

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


class ActionFailed(Exception):
    """An action did not do its job; ``retryable`` when the cause is transient (no answer)."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


def _transient(e: BaseException) -> bool:
    return isinstance(
        e, E.TransportError | httpx.TransportError | ConnectionError | TimeoutError | OSError
    ) and not (isinstance(e, E.OPNsenseError) and not isinstance(e, E.TransportError))


async def execute(action: Action, env: PlaybookEnv, emit: Emit, abort: asyncio.Event) -> dict[str, Any]:
    """Do ``action``; a small JSON-ready result (what changed). Raises :class:`ActionFailed`."""
    try:
        return await _execute(action, env, emit, abort)
    except ActionFailed:
        raise
    except (LookupError, ValueError, E.OPNsenseError, httpx.HTTPError, OSError, smtplib.SMTPException) as e:
        raise ActionFailed(f"{type(e).__name__}: {e}", retryable=_transient(e)) from e


async def _execute(action: Action, env: PlaybookEnv, emit: Emit, abort: asyncio.Event) -> dict[str, Any]:
    p = action.params
    kind = action.kind
    if kind in ("shell", "nft_block"):
        return await _shell(action, env, emit, abort, p["command"])
    if kind == "block_ip":
        fw = await _firewall(env, p["firewall"])
        res = await fw.block_ip(p["ip"], p["reason"], p["ttl"], interface=p["interface"])
        return {"changed": res.changed, "changes": [c.summary() for c in res.changes]}
    if kind == "alias_add":
        fw = await _firewall(env, p["firewall"])
        res = await fw.alias_add(p["alias"], p["ip"])
        return {"changed": res.changed}
    if kind == "rule":
        fw = await _firewall(env, p["firewall"])
        # Savepoint → change → apply → verify → cancel rollback: a rule that cuts us off undoes itself.
        res = await fw.safe_apply(change=lambda: fw.ensure_rule(p["description"], **p["fields"]))
        if res.data.get("status") not in (None, "applied", "unchanged"):
            raise ActionFailed(f"the rule was not applied: {'; '.join(res.notes) or res.data.get('status')}")
        created = any(c.action == "create" and c.kind == "rule" for c in res.changes)
        return {"changed": res.changed, "created": created, "status": res.data.get("status")}
    if kind == "webhook":
        http = env.http or httpx.AsyncClient()
        try:
            body = {"text": p["message"], "step": action.step, **p.get("extra", {})}
            r = await http.post(p["url"], json=body, headers=p["headers"], timeout=p["timeout"])
        finally:
            if env.http is None:
                await http.aclose()
        if r.status_code >= 500:
            raise ActionFailed(f"{p['url']} answered HTTP {r.status_code}", retryable=True)
        if r.status_code >= 400:
            raise ActionFailed(f"{p['url']} refused the notification: HTTP {r.status_code} {r.text[:200]}")
        return {"status": r.status_code}
    if kind == "email":
        await asyncio.to_thread(_send_mail, p)
        return {"sent_to": p["to"]}
    if kind == "agent":
        if env.agent is None:
            raise ActionFailed("this runner cannot open agent sessions (run the playbook in fazaid)")
        return await env.agent(p["goal"], p["max_iterations"])
    raise ActionFailed(f"no executor for {kind!r}")


async def _firewall(env: PlaybookEnv, name: str | None) -> Any:
    if env.firewalls is None:
        raise ActionFailed("no firewall is configured (register one with `fazai opnsense add`)")
    return await env.firewalls.get(name)


async def _shell(
    action: Action, env: PlaybookEnv, emit: Emit, abort: asyncio.Event, command: str
) -> dict[str, Any]:
    target = env.node(action.target)

    async def out(stream: str, text: str) -> None:
        await emit("exec_log", {"step": action.step, "target": action.target, "stream": stream, "text": text})

    res = await target.run(command, timeout=action.params.get("timeout") or 60.0, on_output=out, cancel=abort)
    if not res.ok:
        why = "timed out" if res.timed_out else "aborted" if res.cancelled else f"exit {res.exit_code}"
        raise ActionFailed(
            f"{action.target}: {why}: {res.stderr.strip()[-300:] or res.stdout.strip()[-300:]}"
        )
    return {"exit_code": res.exit_code, "duration_s": round(res.duration_s, 3)}


def _send_mail(p: dict[str, Any]) -> None:
    host, _, port = str(p["smtp"]).rpartition(":")
    msg = EmailMessage()
    msg["From"] = p["sender"]
    msg["To"] = ", ".join(p["to"])
    msg["Subject"] = p["subject"]
    msg.set_content(p["body"])
    with smtplib.SMTP(host or "localhost", int(port or 25), timeout=p["timeout"]) as smtp:
        smtp.send_message(msg)


async def rollback(action: Action, result: dict[str, Any], env: PlaybookEnv) -> str | None:
    """Undo a completed action; a sentence of what was undone, or None when it has no undo.

    Undo restores the state before the run, so it runs without a new approval.
    """
    p = action.params
    if action.kind in ("shell", "nft_block") and p.get("undo"):
        res = await env.node(action.target).run(p["undo"], timeout=60.0)
        if not res.ok:
            raise ActionFailed(
                f"undo on {action.target} failed: exit {res.exit_code} {res.stderr.strip()[-200:]}"
            )
        return f"{action.target}: $ {p['undo']}"
    if action.kind == "block_ip":
        fw = await _firewall(env, p["firewall"])
        await fw.unblock_ip(p["ip"])
        return f"unblocked {p['ip']}"
    if action.kind == "alias_add" and result.get("changed"):
        fw = await _firewall(env, p["firewall"])
        await fw.alias_remove(p["alias"], p["ip"])
        return f"removed {p['ip']} from alias {p['alias']}"
    if action.kind == "rule" and result.get("created"):
        fw = await _firewall(env, p["firewall"])
        await fw.delete_rule(p["description"])
        return f"deleted rule {p['description']!r}"
    return None
