"""The action protocol (model → daemon) and the event log (daemon → everyone).

Actions are one-line JSON objects with an ``action`` key (ARCHITECTURE §2). Events are the ordered
entries of a session's log (§1). Both are versioned with ``v``; extend, never repurpose.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

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
    """One command, or (v1 extension, offered by ``fazai ask``) several independent ``commands``
    that run in parallel. Exactly one of the two is given."""

    action: Literal["shell"] = "shell"
    command: str | None = Field(default=None, min_length=1)
    commands: list[str] | None = Field(default=None, min_length=1, max_length=8)
    timeout: float | None = Field(default=None, gt=0)
    target: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ShellAction:
        if (self.command is None) == (self.commands is None):
            raise ValueError('give "command" (one command) or "commands" (a list), not both or neither')
        if self.commands is not None and any(not c.strip() for c in self.commands):
            raise ValueError("every entry of commands must be a non-empty command")
        return self

    def all_commands(self) -> list[str]:
        """The commands of this action, in order."""
        return [self.command] if self.command is not None else list(self.commands or [])


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
    # What the model claims; stored items start "unverified" whatever it says (knowledge integrity).
    status: Literal["verified", "unverified"] = "unverified"
    check: str | None = None  # a read-only command that proves the recipe works (run on a later session)


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
    "alert",  # an outside alert (Suricata IDS) that started the session: its first event
    "exec_skip",
    "playbook",  # a playbook run started: which playbook, what triggered it (its first event after `alert`)
    "step",  # a playbook step: planned, stage, ok, retry, failed, skipped, rolled_back
    "grounding",  # the verdict on a final answer: its values and where each was found (or not)
    "node",  # the run works on this inventory node (--node): its commands go there, resumes too
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


# --- The streaming action parser -------------------------------------------------------------------
#
# The model answers with free text; the first complete JSON object with a known ``action`` key that
# validates is the action (§2). The parser is fed token by token and reports the action as soon as
# its closing brace arrives, so generation can stop right there. It tracks JSON strings (braces and
# newlines inside them do not count), ignores prose and code fences before the action (kept as the
# visible reasoning), and never raises on any input: what was wrong becomes a :class:`ParseFailure`
# that is fed back to the model as a format-error observation.

_WS = " \t\r\n"
_MAX_PROBLEMS = 4
# Actions nest a few levels at most (a tool's input schema); deeper is junk, and json.loads would
# hit Python's recursion limit on it.
_MAX_DEPTH = 64
# How many unclosed objects finish() looks inside for an action (bounds the work on junk).
_MAX_RESCANS = 32


def action_line(action: BaseModel) -> str:
    """The canonical one-line JSON of an action (``action`` first; no ``v``/``id``/unset fields)."""
    data = action.model_dump(exclude={"v", "id"}, exclude_none=True)
    ordered = {"action": data.pop("action"), **data}
    return json.dumps(ordered, ensure_ascii=False, separators=(", ", ": "))


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """An answer with no valid action, and why: fed back to the model as a format error."""

    problems: tuple[str, ...]
    text: str
    offered: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """One paragraph saying what was wrong."""
        if not self.problems:
            if not self.text.strip():
                return "the answer was empty"
            return "no JSON action found in the answer"
        return "; ".join(self.problems)

    def observation(self) -> str:
        """The format-error text the model sees, with what to do instead."""
        kinds = ", ".join(self.offered or ACTION_KINDS)
        return (
            f"FORMAT ERROR: {self.message}. Answer with at most a short reasoning line, then exactly one "
            'JSON object on one line, for example {"action": "shell", "command": "uptime"}. '
            f"Available actions: {kinds}."
        )


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ActionStreamParser:
    """Finds the first complete, valid action in a stream of text chunks split anywhere.

    ``offered`` limits which action kinds count (others are reported as not available).
    """

    def __init__(self, offered: Iterable[str] | None = None):
        self.offered: tuple[str, ...] = tuple(offered) if offered is not None else ACTION_KINDS
        self._buf = ""
        self._pos = 0
        self._start: int | None = None  # index of the '{' of the object being scanned
        self._depth = 0
        self._in_str = False
        self._esc = False
        self._final = False
        self._problems: list[str] = []
        self.action: Action | None = None
        self.span: tuple[int, int] | None = None  # where the action's JSON sits in ``text``

    @property
    def text(self) -> str:
        """Everything fed so far."""
        return self._buf

    @property
    def problems(self) -> tuple[str, ...]:
        """Format problems seen so far (invalid JSON, unknown actions, bad fields)."""
        return tuple(self._problems)

    @property
    def reasoning(self) -> str:
        """The visible reasoning: text before the action, without a code-fence opener."""
        end = self.span[0] if self.span else len(self._buf)
        lines = self._buf[:end].rstrip().splitlines()
        if lines and lines[-1].strip().startswith("```"):
            lines.pop()
        return "\n".join(lines).strip()

    def feed(self, chunk: str) -> Action | None:
        """Add a chunk of text; return the action once it is complete (and on every later call)."""
        if self.action is None and chunk:
            self._buf += chunk
            self._scan()
        return self.action

    def finish(self) -> Action | ParseFailure:
        """The stream ended: return the action, or a :class:`ParseFailure` saying what was wrong."""
        if self.action is not None:
            return self.action
        self._final = True
        self._scan()
        # An object left open (a stray '{"' in prose, or a cut-off action): report it, then look
        # for an action that starts inside it.
        rescans = 0
        while self.action is None and self._start is not None and rescans < _MAX_RESCANS:
            rescans += 1
            fragment = self._buf[self._start :]
            if '"action"' in fragment:
                self._problem(f"incomplete JSON (unclosed brace or string): {_short(fragment)}")
            self._pos, self._start = self._start + 1, None
            self._scan()
        if self.action is not None:
            return self.action
        return ParseFailure(tuple(self._problems), self._buf, self.offered)

    def _problem(self, text: str) -> None:
        if text not in self._problems and len(self._problems) < _MAX_PROBLEMS:
            self._problems.append(text)

    def _scan(self) -> None:
        buf, n, i = self._buf, len(self._buf), self._pos
        while i < n:
            if self._start is None:
                j = buf.find("{", i)
                if j < 0:
                    i = n
                    break
                k = j + 1
                while k < n and buf[k] in _WS:
                    k += 1
                if k >= n and not self._final:
                    i = j  # cannot tell yet whether this brace opens an object: wait for more
                    break
                # A JSON object starts with '{"' or '{}': '{x' or '{ foo' is prose.
                if k < n and buf[k] in '"}':
                    self._start, self._depth, self._in_str, self._esc = j, 1, False, False
                i = j + 1
                continue
            c = buf[i]
            if self._in_str:
                if self._esc:
                    self._esc = False
                elif c == "\\":
                    self._esc = True
                elif c == '"':
                    self._in_str = False
            elif c == '"':
                self._in_str = True
            elif c == "{":
                self._depth += 1
                if self._depth > _MAX_DEPTH:
                    self._problem(f"JSON nested deeper than {_MAX_DEPTH} levels")
                    self._start = None  # give up on this object; look for the next one after here
            elif c == "}":
                self._depth -= 1
                if self._depth == 0:
                    start, self._start = self._start, None
                    i = self._evaluate(start, i + 1)
                    if self.action is not None:
                        break
                    continue
            i += 1
        self._pos = i

    def _evaluate(self, start: int, end: int) -> int:
        """Judge the object ``buf[start:end]``; return where scanning goes on."""
        text = self._buf[start:end]
        try:
            obj = json.loads(text, strict=False)  # strict=False: raw newlines inside strings are fine
        except (ValueError, RecursionError) as e:
            if '"action"' in text:
                msg = getattr(e, "msg", str(e))
                self._problem(f"invalid JSON ({msg} at character {getattr(e, 'pos', '?')}): {_short(text)}")
            return start + 1  # an action may start inside what looked like an object
        if not isinstance(obj, dict) or "action" not in obj:
            return end
        kind = obj["action"]
        if not isinstance(kind, str) or kind not in ACTION_MODELS:
            self._problem(f"unknown action {kind!r} (use one of: {', '.join(self.offered)})")
            return end
        if kind not in self.offered:
            self._problem(f"action {kind!r} is not available here (use one of: {', '.join(self.offered)})")
            return end
        # The id is the daemon's to assign and the version is ours: never taken from the model.
        fields = {k: v for k, v in obj.items() if k not in ("id", "v")}
        try:
            action = action_adapter.validate_python(fields)
        except ValidationError as e:
            details = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'][1:]) or 'action'}: {err['msg']}" for err in e.errors()
            )
            self._problem(f"bad fields for {kind!r}: {details}")
            return end
        self.action = action
        self.span = (start, end)
        return end


def parse_action(text: str, offered: Iterable[str] | None = None) -> Action | ParseFailure:
    """Parse a whole answer at once (convenience over :class:`ActionStreamParser`)."""
    parser = ActionStreamParser(offered)
    parser.feed(text)
    return parser.finish()
