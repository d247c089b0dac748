"""Start an agent session from a Suricata IDS alert.

The session's first event is the alert itself (kind ``alert``, data = the typed alert); its goal
describes the alert and what the agent may do about it (block the source with
``opnsense.block_ip``, which asks the operator first). Everything after that is a normal run of
the loop, so the safety policy, approvals and the event log work as for any goal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fazai.agent.deps import AgentDeps, Interaction
from fazai.agent.loop import run_agent
from fazai.opnsense.alerts import SuricataAlert
from fazai.protocol import Event

# (goal, *, session_id, interaction, abort, prior_events, …) -> events: the runner's loop signature.
LoopFn = Callable[..., AsyncIterator[Event]]


def alert_event(session_id: str, alert: SuricataAlert) -> Event:
    """The ``alert`` event that opens a session started by ``alert``."""
    return Event(session=session_id, kind="alert", data=alert.event_data())


def _is_public(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


def alert_goal(alert: SuricataAlert, *, firewall: str | None = None) -> str:
    """The goal of a session that responds to ``alert``: what happened, and the tool to act with."""
    details = [f"signature {alert.signature!r} (sid {alert.signature_id})"]
    if alert.category:
        details.append(f"category {alert.category!r}")
    if alert.severity is not None:
        details.append(f"severity {alert.severity} (1 is the most severe)")
    src = f"{alert.src_ip}:{alert.src_port}" if alert.src_port is not None else alert.src_ip
    dst = f"{alert.dest_ip}:{alert.dest_port}" if alert.dest_port is not None else alert.dest_ip
    fw = f', "firewall": {json.dumps(firewall)}' if firewall else ""
    reason = f"IDS: {alert.signature} (sid {alert.signature_id})"
    where = (
        "a public address"
        if _is_public(alert.src_ip)
        else "a private or reserved address (often one of ours: be careful)"
    )
    return (
        f"Respond to this Suricata IDS alert: {alert.proto} {src} → {dst}, {', '.join(details)}, "
        f"action {alert.action}, seen {alert.timestamp.isoformat()}. The source {alert.src_ip} is {where}. "
        "Decide whether the source must be blocked at the OPNsense firewall. To block it, use "
        f'{{"action": "use_tool", "name": "opnsense.block_ip", "args": {{"ip": {json.dumps(alert.src_ip)}, '
        f'"reason": {json.dumps(reason)}{fw}}}}} '
        "(FazAI shows the operator the planned change and asks for approval). Never block private, "
        "loopback or the firewall's own addresses. If it is a false positive or not worth a block, say "
        "why. When the block is verified, or you decided not to block, finish with done, saying what "
        "was done."
    )


async def respond_to_alert(
    alert: SuricataAlert,
    *,
    session_id: str,
    deps: AgentDeps,
    interaction: Interaction,
    abort: asyncio.Event,
    firewall: str | None = None,
) -> AsyncIterator[Event]:
    """Run an agent session about ``alert``: the ``alert`` event first, then the loop's events."""
    yield alert_event(session_id, alert)
    async for ev in run_agent(
        alert_goal(alert, firewall=firewall),
        session_id=session_id,
        deps=deps,
        interaction=interaction,
        abort=abort,
    ):
        yield ev


def with_alert(loop_fn: LoopFn, alert: SuricataAlert) -> LoopFn:
    """Wrap a runner loop function so a new session starts with the ``alert`` event.

    For the session runner (``SessionManager(loop_fn=…)``): start the run with
    :func:`alert_goal` as its goal. A resumed session (with prior events) gets no second alert event.
    """

    async def loop(
        goal: str, *, session_id: str, prior_events: Sequence[Event] = (), **kw: Any
    ) -> AsyncIterator[Event]:
        if not prior_events:
            yield alert_event(session_id, alert)
        async for ev in loop_fn(goal, session_id=session_id, prior_events=prior_events, **kw):
            yield ev

    return loop
