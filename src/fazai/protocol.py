"""The action protocol (model → daemon) and the event log (daemon → everyone).

Actions are one-line JSON objects with an ``action`` key (ARCHITECTURE §2). Events are the ordered
entries of a session's log (§1). Both are versioned with ``v``; extend, never repurpose.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

PROTOCOL_VERSION = 1


class _Action(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    v: int = PROTOCOL_VERSION
    # Assigned by the daemon, never trusted from the model.
    id: int | None = None


class PlanAction(_Action):
    action: Literal["plan"] = "plan"
    steps: list[str] = Field(min_length=1)


class AskAction(_Action):
    action: Literal["ask"] = "ask"
    question: str = Field(min_length=1)
    options: list[str] | None = None
    default: str | None = None


class ResearchAction(_Action):
    action: Literal["research"] = "research"
    query: str = Field(min_length=1)
    sources: list[Literal["kb", "docs", "web"]] | None = None


class ShellAction(_Action):
    action: Literal["shell"] = "shell"
    command: str = Field(min_length=1)
    timeout: float | None = Field(default=None, gt=0)
    target: str | None = None


class ToolSpecAction(_Action):
    action: Literal["tool_spec"] = "tool_spec"
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    description: str = Field(min_length=1)
    inputs: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    outputs: dict[str, Any] | None = None
    tests: list[dict[str, Any]] | None = None


class UseToolAction(_Action):
    action: Literal["use_tool"] = "use_tool"
    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class ObserveAction(_Action):
    action: Literal["observe"] = "observe"
    summary: str = Field(min_length=1)
    next: str | None = None


class CommitKBAction(_Action):
    action: Literal["commit_kb"] = "commit_kb"
    title: str = Field(min_length=1)
    snippet: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    status: Literal["verified", "unverified"] = "unverified"


class DoneAction(_Action):
    action: Literal["done"] = "done"
    answer: str = ""
    status: Literal["success", "failed", "blocked"] = "success"


Action = Annotated[
    PlanAction
    | AskAction
    | ResearchAction
    | ShellAction
    | ToolSpecAction
    | UseToolAction
    | ObserveAction
    | CommitKBAction
    | DoneAction,
    Field(discriminator="action"),
]

ACTION_MODELS: dict[str, type[_Action]] = {
    "plan": PlanAction,
    "ask": AskAction,
    "research": ResearchAction,
    "shell": ShellAction,
    "tool_spec": ToolSpecAction,
    "use_tool": UseToolAction,
    "observe": ObserveAction,
    "commit_kb": CommitKBAction,
    "done": DoneAction,
}
ACTION_KINDS: tuple[str, ...] = tuple(ACTION_MODELS)

action_adapter: TypeAdapter[Action] = TypeAdapter(Action)


EventKind = Literal[
    "session_started",
    "token",
    "action",
    "plan",
    "ask",
    "approval_required",
    "reply",
    "exec_log",
    "exec_end",
    "research_result",
    "tool_ready",
    "observe",
    "kb_commit",
    "context",
    "done",
    "error",
    "aborted",
]


def utcnow_iso() -> str:
    """Current time as an ISO-8601 UTC string with milliseconds and a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Event(BaseModel):
    """One entry of a session's ordered log. ``seq`` is assigned when the event is stored."""

    model_config = ConfigDict(extra="ignore")

    v: int = PROTOCOL_VERSION
    session: str
    seq: int = 0
    ts: str = Field(default_factory=utcnow_iso)
    kind: EventKind
    data: dict[str, Any] = Field(default_factory=dict)
