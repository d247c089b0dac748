"""The conversation the model sees, and how to rebuild it from a session's event log.

Every model turn ends in exactly one event that carries what the model said (``said``): the
``action`` event, or an ``observe`` event with ``status: "format_error"``. Every observation the model
gets back is an ``observe`` event carrying ``text``. A new goal is a ``context`` event. So the log
alone rebuilds the exact same prompt after a restart (and the worker's prefix cache still matches).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from fazai.protocol import Event

EntryRole = Literal["goal", "assistant", "observation"]


@dataclass(slots=True)
class Entry:
    """One item of the history: a goal (with its context), a model turn, or an observation."""

    role: EntryRole
    text: str
    action_id: int | None = None
    context: dict[str, Any] = field(default_factory=dict)  # goal entries: facts and KB hits


@dataclass(slots=True)
class History:
    """What happened so far in a session, in order."""

    entries: list[Entry] = field(default_factory=list)
    last_action_id: int = 0
    # The goal of the latest run and whether it was finished with ``done`` (an aborted or failed run
    # can be resumed; a finished one cannot).
    goal: str | None = None
    finished: bool = True
    # Model turns taken for the latest goal (format errors included), for the iteration limit.
    iterations: int = 0
    # An action that started but has no observation (the daemon died under it).
    pending_action: int | None = None
    # Set by history_from_events when the log ended with such an action: the loop records the note.
    interrupted_action: int | None = None

    def add_goal(self, goal: str, context: dict[str, Any] | None = None) -> None:
        self.entries.append(Entry("goal", goal, context=dict(context or {})))
        self.goal, self.finished, self.iterations = goal, False, 0

    def add_turn(self, said: str, action_id: int | None = None) -> None:
        self.entries.append(Entry("assistant", said, action_id))
        self.iterations += 1
        if action_id is not None:
            self.last_action_id = max(self.last_action_id, action_id)
            self.pending_action = action_id

    def add_observation(self, text: str, action_id: int | None = None) -> None:
        self.entries.append(Entry("observation", text, action_id))
        if action_id is not None and action_id == self.pending_action:
            self.pending_action = None

    def next_action_id(self) -> int:
        """The id the next action gets (1, 2, …: unique within the session)."""
        return self.last_action_id + 1

    @property
    def first_context(self) -> dict[str, Any]:
        """The context of the session's first goal (it stays at the top of the prompt)."""
        for e in self.entries:
            if e.role == "goal":
                return e.context
        return {}


def interrupted_note(action_id: int) -> str:
    """The observation given for an action whose outcome was lost (restart mid-action)."""
    return (
        f"action {action_id} was interrupted (FazAI restarted) and its outcome is unknown: "
        "check the current state before repeating it."
    )


def history_from_events(events: Iterable[Event]) -> History:
    """Rebuild the history from a session's stored events (any order-preserving iterable)."""
    h = History()
    for ev in events:
        d = ev.data
        if ev.kind == "context" and "goal" in d:
            if h.pending_action is not None:
                h.add_observation(interrupted_note(h.pending_action), h.pending_action)
            h.add_goal(str(d["goal"]), {k: v for k, v in d.items() if k != "goal"})
        elif ev.kind == "action":
            aid = d.get("id")
            h.add_turn(str(d.get("said", "")), aid if isinstance(aid, int) else None)
        elif ev.kind == "observe":
            aid = d.get("action")
            if d.get("status") == "format_error":
                h.add_turn(str(d.get("said", "")))
            if "text" in d:
                h.add_observation(str(d["text"]), aid if isinstance(aid, int) else None)
        elif ev.kind == "done":
            h.finished = True
    if h.pending_action is not None:
        h.interrupted_action = h.pending_action
        h.add_observation(interrupted_note(h.pending_action), h.pending_action)
    return h
