"""What a session manager does as one of several replicas on a shared store (docs/scale.md).

Heartbeats and the sweep of dead replicas' sessions, and replies/aborts forwarded over the bus to
the replica that runs a session. Mixed into :class:`fazai.sessions.manager.SessionManager`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from fazai.sessions.errors import RunnerError

if TYPE_CHECKING:
    from fazai.bus import EventBus
    from fazai.config import Settings
    from fazai.sessions.manager import Run
    from fazai.store import Store

log = structlog.get_logger("fazai.runner")


class ReplicaMixin:
    """Replica duties of a session manager (needs ``settings``, ``store``, ``bus``, ``runs``, ...)."""

    settings: Settings
    store: Store
    bus: EventBus | None
    replica: str
    shared_store: bool
    runs: dict[str, Run]

    @property
    def _stale_s(self) -> float:
        # Three missed heartbeats: a replica busy for a moment is not declared dead.
        return 3 * self.settings.daemon.heartbeat_s + 1

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.daemon.heartbeat_s)
            try:
                await self.store.heartbeat(self.replica)
                # Orphans of replicas that stopped beating become interrupted (resumable anywhere).
                ids = await self.store.mark_running_interrupted(
                    self.replica, stale_after_s=self._stale_s, own=False
                )
                for sid in ids:
                    log.warning("session_interrupted", session=sid, why="its replica stopped")
            except Exception as e:
                log.warning("heartbeat_failed", error=str(e).splitlines()[0] if str(e) else type(e).__name__)

    async def handle_control(self, body: dict[str, Any]) -> dict[str, Any]:
        """A reply or abort another replica forwarded for a session this one runs."""
        sid = str(body.get("session"))
        try:
            if body.get("op") == "abort":
                aborted = await self.abort(sid)  # type: ignore[attr-defined]
                return {"aborted": aborted}
            if body.get("op") == "reply":
                self.reply(  # type: ignore[attr-defined]
                    sid, body.get("action"), approved=body.get("approved"), answer=body.get("answer")
                )
                return {"accepted": True}
        except RunnerError as e:
            return {"error": str(e), "status": e.status}
        return {"error": f"unknown control request {body.get('op')!r}", "status": 400}

    async def forward(self, session_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Send a reply/abort to the replica that runs ``session_id``; None when it runs here or nowhere.

        Raises :class:`RunnerError` with that replica's refusal, or 503 when it cannot be reached.
        """
        if session_id in self.runs or self.bus is None or not self.shared_store:
            return None
        rec = await self.store.get_session(session_id)
        if rec is None or rec.status != "running" or not rec.replica or rec.replica == self.replica:
            return None
        from fazai.bus import BusUnavailable

        try:
            answer = await self.bus.request(rec.replica, {**body, "session": session_id})
        except BusUnavailable as e:
            raise RunnerError(f"session {session_id} runs on replica {rec.replica}: {e}; retry", 503) from e
        if "error" in answer:
            raise RunnerError(str(answer["error"]), int(answer.get("status", 409)))
        return {**answer, "replica": rec.replica}
