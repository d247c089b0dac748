"""The agent wire protocol (v1): one JSON object per WebSocket text frame, imported by both ends.

Every frame is an :class:`Envelope` — the seeds' ``{"v": 1, "kind": …, "id": …, "node": …, "corr": …,
"spec": {…}}``. ``id`` is unique per sender; ``corr`` ties a frame to a session (server → agent) or to
the frame it answers (``ack``, ``error``). ``spec`` is validated against the model of its ``kind``
(:data:`SPECS`), so a bad frame fails here, at the edge, with a message naming the field.

Flow (docs/fleet.md): the agent dials out, sends ``hello``; the server answers ``ack`` with the
credit window and limits; then ``heartbeat``/``telemetry.push`` from the agent and actions
(``command.exec``, ``file.diff``, ``file.apply``, ``file.read``, ``tool.run``) from the server. A
command streams ``command.output`` chunks and ends with ``command.exit``; the other actions end with
one ``result``. Agent → server data frames spend one credit each; the server's ``ack`` returns credit
(``credit``) and lists the frames it has stored durably (``ids``), which the agent may then forget.

Extend kinds, never repurpose them; a change of meaning bumps :data:`VERSION`. Kinds added to v1
later carry the :data:`REVISION` they came with (:data:`ADDED_IN`): a peer uses one only when the
other side announced it (the agent lists the control kinds it understands in ``hello.capabilities``;
an older server ignores them, an older agent is never sent them).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

VERSION = 1
# Compatible additions to v1 (new kinds only; no field of an existing kind changes meaning).
REVISION = 2
ADDED_IN: dict[str, int] = {"command.cancel": 2}
# Largest frame either side accepts; a command's output is chunked well below it.
MAX_FRAME_BYTES = 1 << 20
# Output bytes carried by one command.output frame.
CHUNK_BYTES = 32 * 1024


TOKEN_PREFIX = "fzt1"


class WireError(ValueError):
    """A frame is not valid protocol: the message says what is wrong (logged and sent back)."""

    def __init__(self, message: str, code: str = "bad_frame"):
        super().__init__(message)
        self.code = code


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(_Spec):
    """What the agent accepts at once (``hello``) or what the server allows (``ack`` of hello)."""

    max_concurrent: int = Field(default=4, ge=1, le=1024)
    max_output_bytes: int = Field(default=1 << 20, ge=1024)


class Hello(_Spec):
    agent_version: str
    protocol: list[int] = Field(default_factory=lambda: [VERSION])
    hostname: str = ""
    os: str = ""
    distro: str = ""
    kernel: str = ""
    arch: str = ""
    capabilities: list[str] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    # Results still in the agent's outbox (delivered right after the hello).
    pending: int = Field(default=0, ge=0)


class Heartbeat(_Spec):
    load1: float = 0.0
    mem_available_kb: int = 0
    uptime_s: float = 0.0
    running: int = Field(default=0, ge=0)


class Metric(_Spec):
    name: str
    value: float
    ts: str
    labels: dict[str, str] = Field(default_factory=dict)


class TelemetryPush(_Spec):
    batch: list[Metric] = Field(max_length=10000)


class CommandExec(_Spec):
    command: str = Field(min_length=1, max_length=65536)
    timeout_s: float | None = Field(default=None, gt=0, le=86400)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


class CommandCancel(_Spec):
    """Server → agent (revision 2): stop the running ``command.exec`` ``action``. The agent kills the
    command's whole process group; the command ends with its usual ``command.exit`` (signal exit code,
    e.g. -15). A command not started yet is not started; an unknown or finished one is ignored."""

    action: str = Field(min_length=1, max_length=128)
    reason: str = Field(default="", max_length=500)


class CommandOutput(_Spec):
    action: str
    seq: int = Field(ge=0)
    stream: Literal["stdout", "stderr"]
    data: str


class CommandExit(_Spec):
    action: str
    exit_code: int
    duration_s: float = 0.0
    timed_out: bool = False
    truncated: bool = False
    # Chunks sent before this one, so the server knows it has all of them.
    chunks: int = Field(default=0, ge=0)
    # Set when the agent would not run the command (policy, capability, restart): why, in words.
    refused: str | None = None


class FileDiff(_Spec):
    """Preview: the unified diff between ``path`` now and ``content``; changes nothing."""

    path: str = Field(min_length=1)
    content: str


class FileApply(_Spec):
    """Write ``content`` to ``path`` atomically, keeping a backup; ``if_sha256`` guards against drift."""

    path: str = Field(min_length=1)
    content: str
    mode: int = Field(default=0o644, ge=0, le=0o7777)
    if_sha256: str | None = Field(default=None, description="sha256 of the current file; '' = must not exist")
    encoding: Literal["utf-8", "base64"] = "utf-8"


class FileRead(_Spec):
    path: str = Field(min_length=1)
    # base64 grows 4/3: half a frame of raw bytes still fits in one result frame.
    max_bytes: int = Field(default=MAX_FRAME_BYTES // 2, ge=1, le=MAX_FRAME_BYTES // 2)


class ToolRun(_Spec):
    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0, le=86400)


class Result(_Spec):
    """The end of a non-streaming action."""

    action: str
    ok: bool
    data: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    refused: str | None = None


class CertRenew(_Spec):
    csr: str


class CertIssued(_Spec):
    cert: str
    not_after: str


class Ack(_Spec):
    # Frames stored durably by the receiver: the sender may drop them from its outbox.
    ids: list[str] = Field(default_factory=list)
    # Credits returned (agent → server data frames allowed on top of those in flight).
    credit: int = Field(default=0, ge=0)
    # Answer to a hello: the server's terms for this connection.
    accepted: bool | None = None
    node: str | None = None
    heartbeat_s: float | None = None
    limits: Limits | None = None


class ErrorSpec(_Spec):
    code: str
    message: str


class Enroll(_Spec):
    """Enrollment (on the enrollment listener): a bootstrap token and a CSR for a key made locally."""

    token: str
    csr: str
    hostname: str = ""
    facts: dict[str, str] = Field(default_factory=dict)


class EnrollPoll(_Spec):
    """Ask again about a pending enrollment; the CSR (same key) proves it is the same agent."""

    enrollment: str
    csr: str


class EnrollResult(_Spec):
    status: Literal["issued", "pending", "rejected"]
    enrollment: str
    node: str
    cert: str | None = None
    ca: str | None = None
    gateway_port: int | None = None
    message: str = ""


SPECS: dict[str, type[_Spec]] = {
    "hello": Hello,
    "heartbeat": Heartbeat,
    "telemetry.push": TelemetryPush,
    "command.exec": CommandExec,
    "command.cancel": CommandCancel,
    "command.output": CommandOutput,
    "command.exit": CommandExit,
    "file.diff": FileDiff,
    "file.apply": FileApply,
    "file.read": FileRead,
    "tool.run": ToolRun,
    "result": Result,
    "cert.renew": CertRenew,
    "cert.issued": CertIssued,
    "ack": Ack,
    "error": ErrorSpec,
    "enroll": Enroll,
    "enroll.poll": EnrollPoll,
    "enroll.result": EnrollResult,
}

# Actions the server sends; each is one capability the agent may or may not allow.
ACTION_KINDS = ("command.exec", "file.diff", "file.apply", "file.read", "tool.run")
# Server → agent control frames about a running action (not actions themselves); an agent announces
# the ones it understands in hello.capabilities.
CONTROL_KINDS = ("command.cancel",)
# Agent → server frames that cost a credit (and sit in the agent's outbox until acked).
DATA_KINDS = ("command.output", "command.exit", "result", "telemetry.push")


class Envelope(BaseModel):
    """One frame. ``spec`` stays a dict here; :meth:`parsed` gives the typed model."""

    model_config = ConfigDict(extra="forbid")

    v: int
    kind: str
    id: str = Field(min_length=1, max_length=128)
    node: str | None = Field(default=None, max_length=128)
    corr: str | None = Field(default=None, max_length=128)
    spec: dict[str, Any] = Field(default_factory=dict)

    def parsed(self) -> Any:
        """The spec validated as its kind's model."""
        return SPECS[self.kind].model_validate(self.spec)


def new_id(prefix: str = "f") -> str:
    """A fresh frame or action id."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def frame(
    kind: str,
    spec: BaseModel | dict[str, Any],
    *,
    id: str | None = None,
    node: str | None = None,
    corr: str | None = None,
) -> str:
    """Serialize one frame (the spec is validated against its kind first)."""
    if kind not in SPECS:
        raise WireError(f"unknown kind {kind!r}", "unknown_kind")
    body = spec if isinstance(spec, BaseModel) else SPECS[kind].model_validate(spec)
    env = {
        "v": VERSION,
        "kind": kind,
        "id": id or new_id(),
        "node": node,
        "corr": corr,
        "spec": body.model_dump(mode="json", exclude_none=False),
    }
    return json.dumps(env, separators=(",", ":"), ensure_ascii=False)


def parse(raw: str | bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> tuple[Envelope, Any]:
    """Decode and validate one frame: ``(envelope, typed spec)`` or :class:`WireError` saying why."""
    if isinstance(raw, bytes):
        raise WireError("binary frames are not part of the protocol: send JSON text frames")
    if len(raw) > max_bytes:
        raise WireError(f"frame of {len(raw)} bytes is over the {max_bytes}-byte limit", "too_big")
    try:
        obj = json.loads(raw)
    except ValueError as e:
        raise WireError(f"frame is not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise WireError("frame is not a JSON object")
    v = obj.get("v")
    if v != VERSION:
        raise WireError(f"unsupported protocol version {v!r}: this side speaks v{VERSION}", "version")
    kind = obj.get("kind")
    if kind not in SPECS:
        raise WireError(f"unknown kind {kind!r}", "unknown_kind")
    try:
        env = Envelope.model_validate(obj)
        return env, env.parsed()
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WireError(f"invalid {kind} frame: {where}: {first['msg']}") from e


def parse_token(token: str) -> tuple[str, str, str]:
    """``(id, secret, ca pin)`` of a bootstrap token ``fzt1.<id>.<secret>.<ca-pin>``, or
    :class:`WireError` saying what is wrong."""
    parts = token.strip().split(".")
    if len(parts) != 4 or parts[0] != TOKEN_PREFIX or len(parts[3]) != 64:
        raise WireError(
            "not a FazAI bootstrap token (expected fzt1.<id>.<secret>.<ca-pin>): "
            "make one with `fazai nodes token --site SITE`",
            "bad_token",
        )
    return parts[1], parts[2], parts[3]
