"""``fazai alerts tail --respond``: an agent session for each IDS alert worth a response.

Each session starts with the alert as its first event (kind ``alert``) and a goal that describes
it (:func:`fazai.agent.alerts.alert_goal`); from there it is an ordinary agent run in the session
store (``fazai sessions``, ``fazai replay``), with the same safety policy and approvals as
``fazai agent``. Sessions run one at a time in this process; alerts that arrive meanwhile wait.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from fazai.agent.alerts import alert_goal, with_alert
from fazai.opnsense.alerts import SuricataAlert
from fazai.protocol import Event

err = Console(stderr=True, soft_wrap=True)


@dataclass
class AlertFilter:
    """Which alerts start a session: severe enough, and not a source answered a moment ago."""

    max_severity: int = 2  # Suricata: 1 is the most severe
    cooldown_s: float = 600.0
    _last: dict[str, float] = field(default_factory=dict)

    def skip_reason(self, alert: SuricataAlert, now: float) -> str | None:
        """Why ``alert`` gets no session (None: respond to it, and start its source's cooldown)."""
        if alert.severity is not None and alert.severity > self.max_severity:
            return f"severity {alert.severity} > {self.max_severity} (--severity)"
        last = self._last.get(alert.src_ip)
        if last is not None and now - last < self.cooldown_s:
            return f"{alert.src_ip} was answered {now - last:.0f}s ago (--cooldown {self.cooldown_s:g}s)"
        self._last[alert.src_ip] = now
        return None


class AlertLoop:
    """The runner's loop function: sessions registered in ``pending`` start with their alert event."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.pending: dict[str, SuricataAlert] = {}

    def __call__(
        self, goal: str, *, session_id: str, prior_events: Sequence[Event] = (), **kw: Any
    ) -> AsyncIterator[Event]:
        alert = self.pending.pop(session_id, None)
        fn = with_alert(self.inner, alert) if alert is not None else self.inner
        return fn(goal, session_id=session_id, prior_events=prior_events, **kw)


async def respond(
    alerts: AsyncIterator[SuricataAlert],
    settings: Any,
    *,
    yes: bool,
    json_mode: bool,
    firewall: str | None,
    flt: AlertFilter,
    max_sessions: int | None = None,
) -> int:
    """Run one session per accepted alert; the exit code of the worst session (0 when none ran)."""
    from fazai.cli.agent import EXIT_FOR, _Session
    from fazai.cli.client import EmbeddedClient
    from fazai.cli.render import Renderer
    from fazai.sessions import logs
    from fazai.sessions.glue import AgentLoop
    from fazai.sessions.manager import RunOptions, SessionManager
    from fazai.store import Store

    logs.configure("warning")  # stdout belongs to the renderer
    store = await Store.open(settings.database_url)
    inner = AgentLoop(settings)
    loop_fn = AlertLoop(inner)
    manager = SessionManager(settings, store, loop_fn=loop_fn)
    await manager.start(recover=False)
    client = EmbeddedClient(settings, store, manager)
    worst, count = 0, 0
    try:
        async for alert in alerts:
            why = flt.skip_reason(alert, time.monotonic())
            if why:
                err.print(f"[dim]skipped {alert.one_line()}: {why}[/]", highlight=False)
                continue
            goal = alert_goal(alert, firewall=firewall)
            rec = await manager.create(goal)
            loop_fn.pending[rec.id] = alert
            renderer = Renderer(json_mode=json_mode)
            s = _Session(client, renderer, interactive=sys.stdin.isatty() and not yes, json_mode=json_mode)
            s.session, s.yes = rec.id, yes
            status = await s.consume(client.generate(goal, rec.id, RunOptions(yes=yes)))
            summary = renderer.finish(status)
            worst = max(worst, EXIT_FOR.get(str(summary.get("status") or status or "failed"), 1))
            count += 1
            if max_sessions and count >= max_sessions:
                break
    finally:
        await client.aclose()
        await inner.aclose()
    return worst
