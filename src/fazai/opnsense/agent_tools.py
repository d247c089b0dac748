"""The OPNsense operations as built-in agent tools, offered to ``use_tool``.

Listed in ``fazai.tools.builtin._BUILTIN_MODULES``. :func:`builtin_tools` offers every tool of
:data:`fazai.opnsense.tools.TOOLS` once at least one firewall is registered (``fazai opnsense
add``), and none otherwise. A changing tool goes:

1. **plan** — ``preview``: the same operation as a dry run; its diff reaches the operator in the
   ``approval_required`` event (the safety policy decides by the tool's risk class);
2. **apply** — the operation itself (rule changes through safe apply where the tool says so; the
   blocklist through a runtime table add, its rule created inside a safe apply on first use);
3. **verify** — the same operation planned again: nothing left to change means the firewall is in
   the desired state (for blocks, the address is checked in the live ``fazai_block`` table too).
   The verdict is the result's ``verification``, which the model sees in the observation.

A firewall connection is opened per tool run and closed after it. Credentials come from the
connector's 0600 secrets file; no tool result, log line or error carries them.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fazai.config import Settings
from fazai.opnsense.firewall import BLOCK_ALIAS, Firewall
from fazai.opnsense.store import FirewallStore, StoreError, open_firewall
from fazai.opnsense.tools import TOOLS, ToolContext, ToolDef
from fazai.tools.registry import BuiltinTool

log = logging.getLogger(__name__)

# Tools whose second plan always has work in it (an apply is never a no-op): verified otherwise.
_APPLY_TOOLS = frozenset({"opnsense.apply"})
_BLOCK_TOOLS = frozenset({"opnsense.block_ip", "opnsense.unblock_ip"})
_LOG_LINES = 40

Opener = Callable[[str | None], Awaitable[Firewall]]


def builtin_tools(settings: Settings) -> list[BuiltinTool]:
    """The OPNsense tools, when a firewall is registered under ``settings.paths.state_dir``."""
    from fazai.vault import resolver

    store = FirewallStore(settings.paths.state_dir, resolver(settings))
    try:
        registered = store.list()
    except StoreError as e:  # a damaged registry must not stop the agent; the operator is told why
        log.warning("OPNsense tools not offered: %s", e)
        return []
    if not registered:
        return []
    never = tuple(settings.opnsense.never_block)
    return [as_builtin(t, lambda name: open_firewall(store, name, never_block=never)) for t in TOOLS]


def change_lines(result: dict[str, Any]) -> list[str]:
    """One human line per change of a tool result (``Result.to_dict()`` shape), then its notes.

    Unchanged items are left out (unless they carry a note)."""
    lines = []
    changes = result.get("changes") or []
    if changes and all(c["action"] == "noop" and not c.get("note") for c in changes):
        lines.append("nothing to change: already in the desired state")
    for c in changes:
        action, kind = c["action"], c["kind"]
        if action == "noop" and not c.get("note"):
            continue  # unchanged items are noise in a plan
        prefix = "would " if c.get("dry_run") and action != "noop" else ""
        if kind == "apply":
            head = f"{prefix}apply {c['name']}"
        else:
            head = f"{prefix}{'leave unchanged' if action == 'noop' else action} {kind} {c['name']}"
        diff = {k: v for k, v in (c.get("diff") or {}).items() if k not in ("expires", "name", "description")}
        if action in ("create", "add"):
            fields = ", ".join(f"{k}={v['after']}" for k, v in diff.items() if v["after"] not in (None, ""))
        elif action == "update":
            fields = ", ".join(f"{k}: {v['before']!r} → {v['after']!r}" for k, v in diff.items())
        else:
            fields = ""
        tail = f" ({fields})" if fields else ""
        note = f" — {c['note']}" if c.get("note") else ""
        lines.append(f"{head}{tail}{note}")
    lines += [f"note: {n}" for n in result.get("notes") or []]
    return lines


class _Connections:
    """Firewalls opened during one tool run, by requested name; all closed at the end."""

    def __init__(self, opener: Opener):
        self._opener = opener
        self._open: dict[str | None, Firewall] = {}

    async def get(self, name: str | None) -> Firewall:
        if name not in self._open:
            self._open[name] = await self._opener(name)
        return self._open[name]

    async def close(self) -> None:
        for fw in self._open.values():
            await fw.client.aclose()
        self._open.clear()


def as_builtin(tool: ToolDef, opener: Opener) -> BuiltinTool:
    """Wrap one OPNsense tool definition as a :class:`BuiltinTool` (preview + verification)."""

    async def preview(args: dict[str, Any]) -> dict[str, Any]:
        conns = _Connections(opener)
        try:
            planned = await tool.run(args, ToolContext(get_firewall=conns.get, dry_run=True))
        finally:
            await conns.close()
        return {**planned, "lines": change_lines(planned)}

    async def run(args: dict[str, Any], ctx: Any) -> dict[str, Any]:
        conns = _Connections(opener)
        try:
            result = await tool.run(args, ToolContext(get_firewall=conns.get, log=getattr(ctx, "log", None)))
            for line in change_lines(result)[:_LOG_LINES]:
                await ctx.log(line)
            if tool.risk != "read_only" and not result.get("dry_run"):
                result["verification"] = await _verify(tool, args, result, conns)
                verdict = _verdict_line(result["verification"])
                await ctx.log(verdict)
                # First key of the observation's JSON: a small model reads the verdict before the diff.
                done = "; ".join(change_lines(result)[:3]) or "nothing changed"
                result = {"outcome": f"{done}. {verdict}", **result}
            return result
        finally:
            await conns.close()

    return BuiltinTool(
        name=tool.name,
        description=tool.description,
        inputs=_without_dry_run(tool.inputs),
        risk=tool.risk,
        run=run,
        preview=preview if tool.risk != "read_only" else None,
        critical=tool.critical,
    )


async def _verify(tool: ToolDef, args: dict[str, Any], result: dict[str, Any], conns: _Connections) -> dict:
    """Check the change took: plan it again (nothing left to do), and read the live state back."""
    fw = await conns.get(args.get("firewall"))
    if tool.verify is not None:
        return await tool.verify(fw, args, result)
    if tool.name in _APPLY_TOOLS:
        alive = await fw.api_alive()
        status = (result.get("data") or {}).get("status", "applied")
        return {
            "ok": alive and status == "applied",
            "method": "safe apply status and the API answering afterwards",
            "status": status,
            "api_answers": alive,
        }
    # ensure_rule's apply=true would plan a new apply every time; the rule itself is what is checked.
    again_args = {k: v for k, v in args.items() if k != "apply"} | {"dry_run": True}
    again = await tool.run(again_args, ToolContext(get_firewall=conns.get, dry_run=True))
    remaining = [
        c for c in again.get("changes") or [] if c["action"] != "noop" and c.get("note") != "expired"
    ]
    out: dict[str, Any] = {
        "ok": not remaining,
        "method": "planned the same change again: nothing is left to change",
        "remaining": change_lines({"changes": remaining}),
    }
    status = (result.get("data") or {}).get("status")
    if status is not None:  # a safe apply happened inside the tool (rule with apply=true)
        out["apply_status"] = status
        out["ok"] = out["ok"] and status == "applied"
    if tool.name in _BLOCK_TOOLS:
        table = await fw.alias_table(BLOCK_ALIAS)
        present = _in_table(str(args["ip"]), table)
        out["runtime_table"] = {"alias": BLOCK_ALIAS, "address": args["ip"], "present": present}
        out["ok"] = out["ok"] and present == (tool.name == "opnsense.block_ip")
    return out


def _without_dry_run(schema: dict[str, Any]) -> dict[str, Any]:
    """The agent never passes ``dry_run``: every change is dry-run by FazAI before it is approved
    (a model asking for dry runs itself only repeats the plan it was already shown)."""
    props = {k: v for k, v in (schema.get("properties") or {}).items() if k != "dry_run"}
    return {**schema, "properties": props}


def _verdict_line(v: dict[str, Any]) -> str:
    table = v.get("runtime_table")
    live = ""
    if table:
        where = "in" if table["present"] else "not in"
        live = f"; {table['address']} is {where} the live {table['alias']} table"
    if v["ok"]:
        return f"verified: {v['method']}{live}"
    left = "; ".join(v.get("remaining") or []) or v.get("status") or v.get("apply_status") or "see result"
    return f"NOT verified ({v['method']}): {left}{live}"


def _in_table(address: str, table: list[str]) -> bool:
    try:
        want = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return address in table
    for entry in table:
        try:
            if ipaddress.ip_network(entry, strict=False) == want:
                return True
        except ValueError:
            continue
    return False
