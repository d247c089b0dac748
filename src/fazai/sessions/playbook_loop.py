"""Playbook runs as sessions: the runner's loop function for ``mode == "playbook"`` runs, and the
playbook environment built from the settings.

A playbook session starts like an alert session (its first event is the ``alert`` when an alert
triggered it) and then carries the engine's events; everything else goes to the agent loop. A
playbook run is not resumable (its trigger is not in the log in a form worth re-running blindly):
resuming one ends it with an error that says to start it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from fazai.config import Settings
from fazai.opnsense.alerts import SuricataAlert
from fazai.playbooks import Playbook, PlaybookEnv, run_playbook
from fazai.playbooks.env import FirewallPool
from fazai.playbooks.guards import Protected
from fazai.protocol import Event
from fazai.safety import SafetyPolicy
from fazai.targets.base import Target
from fazai.targets.local import LocalTarget
from fazai.targets.netns import NetnsTarget


@dataclass
class PendingRun:
    """What a created playbook session will run."""

    playbook: Playbook
    ctx: dict[str, Any]
    alert: SuricataAlert | None = None


def build_nodes(settings: Settings) -> dict[str, Target]:
    """The nodes of ``[playbooks.nodes]`` as targets."""
    out: dict[str, Target] = {}
    for name, spec in settings.playbooks.nodes.items():
        if spec.kind == "netns":
            if not spec.netns:
                raise ValueError(f"[playbooks.nodes.{name}] kind = 'netns' needs netns = '/run/netns/NAME'")
            out[name] = NetnsTarget(spec.netns, name=name)
        else:
            out[name] = LocalTarget(name=name)
    return out


def build_env(settings: Settings) -> PlaybookEnv:
    """Nodes, registered firewalls, the safety policy and the protected addresses from the settings."""
    from fazai.opnsense.store import FirewallStore, open_firewall

    store = FirewallStore(settings.paths.state_dir)

    async def opener(name: str | None) -> Any:
        return await open_firewall(store, name)

    pb = settings.playbooks
    protected = Protected.build(
        management=pb.management, operators=pb.operators, gateways=pb.gateways, detect_local=pb.detect_local
    )
    return PlaybookEnv(
        policy=SafetyPolicy(settings.safety),
        nodes=build_nodes(settings),
        firewalls=FirewallPool(opener),
        protected=protected,
    )


class PlaybookLoop:
    """The runner's loop function: playbook runs here, everything else to ``inner`` (the agent)."""

    def __init__(self, settings: Settings, env: PlaybookEnv, inner: Any = None):
        self.settings = settings
        self.env = env
        self._inner = inner
        self._owned: Any = None
        self.pending: dict[str, PendingRun] = {}

    def _agent(self) -> Any:
        if self._inner is None:
            from fazai.sessions.glue import AgentLoop

            self._inner = self._owned = AgentLoop(self.settings)
        return self._inner

    def __call__(
        self,
        goal: str,
        *,
        session_id: str,
        interaction: Any,
        abort: asyncio.Event,
        prior_events: Sequence[Event] = (),
        options: Any = None,
        **kw: Any,
    ) -> AsyncIterator[Event]:
        if getattr(options, "mode", "agent") != "playbook":
            return self._agent()(
                goal, session_id=session_id, interaction=interaction, abort=abort,
                prior_events=prior_events, options=options, **kw,
            )  # fmt: skip
        return self._playbook(session_id, interaction, abort)

    async def _playbook(
        self, session_id: str, interaction: Any, abort: asyncio.Event
    ) -> AsyncIterator[Event]:
        item = self.pending.pop(session_id, None)
        if item is None:
            yield Event(
                session=session_id,
                kind="error",
                data={"message": "a playbook run cannot be resumed: start it again (fazai playbook run)"},
            )
            return
        if item.alert is not None:
            yield Event(
                session=session_id, kind="alert", data=item.ctx.get("alert") or item.alert.event_data()
            )
        async for ev in run_playbook(
            item.playbook, item.ctx, self.env, session_id=session_id, interaction=interaction, abort=abort
        ):
            yield ev

    async def aclose(self) -> None:
        """Close the agent loop this object created and the environment's connections."""
        if self._owned is not None:
            await self._owned.aclose()
        await self.env.aclose()
