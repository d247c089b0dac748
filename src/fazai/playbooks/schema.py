"""The playbook file format (YAML), validated by pydantic. See docs/playbooks.md for a tour.

A playbook has one trigger, a list of steps, and the guard rails around them: approvals by risk
class, exceptions (addresses never acted on, with an expiry), a rate limit and a canary rollout.
Every model forbids unknown fields, so a typo is an error with its line, not a silently ignored key.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``90``, ``"90s"``, ``"5m"``, ``"1h"``, ``"500ms"`` → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 30s, 5m, 1h")
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration (write e.g. 30s, 5m, 1h, 2d)")
    return float(m.group(1)) * _UNITS[m.group(2)]


Duration = Annotated[float, Field(ge=0)]
# Roles (fazai.auth.Role) that may answer an approval; the daemon enforces the one a step names.
APPROVER_ROLES = ("approver", "admin")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# -- triggers --------------------------------------------------------------------------------------


class AlertMatch(_Strict):
    """A Suricata alert matches when every given field does (lists: any of; globs for text)."""

    signature_id: list[int] | None = None
    signature: str | None = Field(default=None, description="glob, e.g. 'ET SCAN *'")
    category: str | None = Field(default=None, description="glob")
    severity_max: int | None = Field(default=None, ge=1, le=255, description="1 is the most severe")
    src: list[str] | None = Field(default=None, description="source networks (CIDR)")
    dst: list[str] | None = Field(default=None, description="destination networks (CIDR)")
    interface: list[str] | None = None
    source: list[str] | None = Field(default=None, description="where the alert came from (ingest source)")

    @field_validator("signature_id", "src", "dst", "interface", "source", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if v is not None and not isinstance(v, list) else v

    @field_validator("src", "dst")
    @classmethod
    def _networks(cls, v: list[str] | None) -> list[str] | None:
        for net in v or []:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as e:
                raise ValueError(f"{net!r} is not a network (write e.g. 203.0.113.0/24)") from e
        return v


class MetricMatch(_Strict):
    """A metric beyond a threshold on a node, for at least ``for`` seconds."""

    name: str
    node: str = "*"
    above: float | None = None
    below: float | None = None
    for_s: Duration = Field(default=0.0, alias="for")

    _d = field_validator("for_s", mode="before")(classmethod(lambda cls, v: parse_duration(v)))

    @model_validator(mode="after")
    def _threshold(self) -> MetricMatch:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` or `below`")
        return self


class ScheduleMatch(_Strict):
    """Every ``every`` seconds (``at_start``: also once when the daemon starts)."""

    every: Duration
    at_start: bool = False

    _d = field_validator("every", mode="before")(classmethod(lambda cls, v: parse_duration(v)))

    @field_validator("every")
    @classmethod
    def _min(cls, v: float) -> float:
        if v < 1:
            raise ValueError("a schedule runs at most once a second (every: 1s or more)")
        return v


class NodeStateMatch(_Strict):
    """A node's state changes (e.g. to ``down``)."""

    node: str = "*"
    to: str
    from_: str | None = Field(default=None, alias="from")


class Trigger(_Strict):
    """Exactly one of the trigger kinds."""

    alert: AlertMatch | None = None
    metric: MetricMatch | None = None
    schedule: ScheduleMatch | None = None
    node_state: NodeStateMatch | None = None

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        given = [k for k in ("alert", "metric", "schedule", "node_state") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a trigger is exactly one of alert, metric, schedule, node_state"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("alert", "metric", "schedule", "node_state") if getattr(self, k) is not None)


# -- steps -----------------------------------------------------------------------------------------


class ShellStep(_Strict):
    """A command on target nodes, classified by the safety policy (``{placeholders}`` filled in)."""

    command: str = Field(min_length=1)
    targets: list[str] = Field(default_factory=lambda: ["local"])
    timeout: Duration = 60.0
    undo: str | None = Field(default=None, description="command that reverses it (used on rollback)")


class BlockIpStep(_Strict):
    """Block an address on an OPNsense firewall (its ``fazai_block`` alias)."""

    ip: str = "{alert.src_ip}"
    firewall: str | None = None
    reason: str = "FazAI playbook {playbook}: {alert.signature}"
    ttl: Duration | None = None
    interface: str = "wan"

    _d = field_validator("ttl", mode="before")(
        classmethod(lambda cls, v: None if v is None else parse_duration(v))
    )


class AliasAddStep(_Strict):
    """Add an address to an existing OPNsense alias."""

    alias: str = Field(min_length=1)
    address: str = "{alert.src_ip}"
    firewall: str | None = None


class RuleStep(_Strict):
    """Ensure an OPNsense filter rule (by description) and apply it safely."""

    description: str = Field(min_length=1)
    firewall: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)


class NftBlockStep(_Strict):
    """Block an address on Linux nodes through an nftables set (``inet fazai`` table by default)."""

    ip: str = "{alert.src_ip}"
    nodes: list[str] = Field(default_factory=lambda: ["local"])
    table: str = Field(default="fazai", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
    set: str = Field(default="blocklist", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")


class WebhookStep(_Strict):
    """POST a JSON message to a URL."""

    url: str = Field(pattern=r"^https?://")
    message: str = "{summary}"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = 5.0


class EmailStep(_Strict):
    """Send an e-mail through an SMTP server."""

    to: list[str] = Field(min_length=1)
    subject: str = "FazAI playbook {playbook}"
    body: str = "{summary}"
    smtp: str = Field(default="localhost:25", description="host:port")
    sender: str = Field(default="fazai@localhost", alias="from")
    timeout: Duration = 10.0

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class AgentStep(_Strict):
    """Open an agent session with ``goal``; its status and answer feed later steps
    (``{steps.ID.status}``, ``{steps.ID.answer}``, ``when``)."""

    goal: str = Field(min_length=1)
    max_iterations: int | None = Field(default=None, ge=1, le=1000)


class When(_Strict):
    """Run a step only if an earlier step ended with ``status`` / an answer containing a text."""

    step: str
    status: str | None = None
    answer_contains: str | None = None


STEP_KINDS = ("shell", "block_ip", "alias_add", "rule", "nft_block", "webhook", "email", "agent")


class Step(_Strict):
    """One step: an ``id``, exactly one action key, and its options."""

    id: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    when: When | None = None
    retries: int = Field(default=2, ge=0, le=10, description="extra attempts on a transport error")
    backoff: Duration = 0.5
    shell: ShellStep | None = None
    block_ip: BlockIpStep | None = None
    alias_add: AliasAddStep | None = None
    rule: RuleStep | None = None
    nft_block: NftBlockStep | None = None
    webhook: WebhookStep | None = None
    email: EmailStep | None = None
    agent: AgentStep | None = None

    _d = field_validator("backoff", mode="before")(classmethod(lambda cls, v: parse_duration(v)))

    @model_validator(mode="after")
    def _one(self) -> Step:
        given = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a step has exactly one of {', '.join(STEP_KINDS)}"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)

    @property
    def spec(self) -> BaseModel:
        return getattr(self, self.kind)


# -- guard rails -----------------------------------------------------------------------------------

RiskName = Literal["read_only", "changes_state", "destructive"]


class Exception_(_Strict):
    """An address or network never acted on, until ``until`` (ISO-8601; none = for good)."""

    cidr: str
    until: datetime | None = None
    reason: str = ""

    @field_validator("cidr")
    @classmethod
    def _net(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_network(v, strict=False))
        except ValueError as e:
            raise ValueError(f"{v!r} is not an address or network (e.g. 192.0.2.7 or 192.0.2.0/24)") from e

    @field_validator("until")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v


class RateLimit(_Strict):
    """At most ``max_runs`` runs of this playbook per ``per`` seconds."""

    max_runs: int = Field(default=30, ge=1)
    per: Duration = 60.0

    _d = field_validator("per", mode="before")(classmethod(lambda cls, v: parse_duration(v)))


class Rollout(_Strict):
    """Multi-node steps: ``canary`` nodes first, then ``percent`` % of them, then all; the first
    failure stops the run and rolls back what it changed."""

    canary: int = Field(default=1, ge=0)
    percent: float = Field(default=50.0, ge=0, le=100)


class Playbook(_Strict):
    """One playbook file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    description: str = ""
    enabled: bool = True
    site: str = Field(
        default="default/default",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
        description="ORG/SITE its runs belong to: who may read, abort and approve them (docs/access.md)",
    )
    trigger: Trigger
    steps: list[Step] = Field(min_length=1)
    approvals: dict[RiskName, str | None] = Field(
        default_factory=lambda: {"destructive": "admin"},
        description="risk class → role that must approve: approver or admin (null: runs without approval)",
    )
    exceptions: list[Exception_] = Field(default_factory=list)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    rollout: Rollout = Field(default_factory=Rollout)

    @field_validator("approvals")
    @classmethod
    def _roles(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        # The roles of fazai.auth that may approve (viewer and operator never may): checked by the
        # daemon on every reply, so a name it does not grant would leave only admins able to answer.
        for risk, role in v.items():
            if role is not None and role not in APPROVER_ROLES:
                raise ValueError(
                    f"{risk}: {role!r} cannot approve: name one of {', '.join(APPROVER_ROLES)} "
                    "(roles of `fazai users grant`), or null for no approval"
                )
        return v

    @model_validator(mode="after")
    def _ids(self) -> Playbook:
        seen: set[str] = set()
        for i, s in enumerate(self.steps):
            s.id = s.id or f"{s.kind}{i + 1}"
            if s.id in seen:
                raise ValueError(f"two steps have the id {s.id!r}")
            if s.when is not None and s.when.step not in seen:
                raise ValueError(
                    f"step {s.id!r}: `when` refers to {s.when.step!r}, which is not an earlier step"
                )
            seen.add(s.id)
        return self
