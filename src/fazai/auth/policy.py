"""Roles, scopes and the one policy function every endpoint, stream and message goes through.

Roles are ordered (viewer < operator < approver < admin): a higher role may do everything a lower one
may. A role is granted on a scope: the whole installation (``*``), an organisation (``acme``) or one
site of it (``acme/paris``). A grant on an organisation covers all its sites; only a grant on ``*``
covers installation-wide actions (managing users, reading the audit trail).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Role(enum.IntEnum):
    """Ordered roles: each includes the rights of the ones below it."""

    viewer = 1
    operator = 2
    approver = 3
    admin = 4

    @classmethod
    def parse(cls, value: str) -> Role:
        """``"operator"`` → :attr:`operator`; a clear error for anything else."""
        try:
            return cls[value.strip().lower()]
        except KeyError:
            raise ValueError(f"unknown role {value!r}: one of {', '.join(r.name for r in cls)}") from None


@dataclass(frozen=True, slots=True)
class Scope:
    """``*`` (org and site None), an organisation (site None) or a site of an organisation."""

    org: str | None = None
    site: str | None = None

    @classmethod
    def parse(cls, value: str) -> Scope:
        """``*`` | ``ORG`` | ``ORG/SITE``."""
        v = value.strip()
        if v == "*":
            return GLOBAL
        org, _, site = v.partition("/")
        if not org or "/" in site or (_ and not site) or any(c.isspace() for c in v):
            raise ValueError(f"bad scope {value!r}: use '*', 'ORG' or 'ORG/SITE'")
        return cls(org, site or None)

    def __str__(self) -> str:
        if self.org is None:
            return "*"
        return self.org if self.site is None else f"{self.org}/{self.site}"

    def covers(self, other: Scope) -> bool:
        """True when a grant on this scope applies to ``other``."""
        if self.org is None:
            return True
        if other.org != self.org:
            return False
        return self.site is None or self.site == other.site


GLOBAL = Scope()
DEFAULT_SITE = Scope("default", "default")


class Reach(enum.Enum):
    """What an action's scope means."""

    site = "site"  # a resource of one site (a session, a node): a grant covering that site
    any = "any"  # shared, read across sites (the knowledge base, metrics): a grant anywhere
    install = "install"  # installation-wide (users, audit): a grant on '*'


@dataclass(frozen=True, slots=True)
class ActionRule:
    role: Role
    reach: Reach
    doc: str


# The catalogue of actions. Every route names one of these; a test checks that every route does.
ACTIONS: dict[str, ActionRule] = {
    "session.read": ActionRule(Role.viewer, Reach.site, "see a session and stream its events"),
    "session.run": ActionRule(Role.operator, Reach.site, "start, continue or resume a session"),
    "session.answer": ActionRule(Role.operator, Reach.site, "answer a session's question"),
    "session.abort": ActionRule(Role.operator, Reach.site, "abort a running session"),
    "session.approve": ActionRule(Role.approver, Reach.site, "approve or deny an action"),
    "fleet.read": ActionRule(Role.viewer, Reach.site, "see nodes"),
    "fleet.manage": ActionRule(Role.admin, Reach.install, "inventory, enrollment, revocation, fan-out"),
    "automation.manage": ActionRule(Role.operator, Reach.any, "alerts, telemetry and playbooks"),
    "metrics.read": ActionRule(Role.viewer, Reach.any, "read the Prometheus metrics"),
    "kb.read": ActionRule(Role.viewer, Reach.any, "browse and search the knowledge base"),
    "kb.review": ActionRule(Role.approver, Reach.any, "verify or reject knowledge items"),
    "audit.read": ActionRule(Role.admin, Reach.install, "read and export the audit trail"),
    "users.manage": ActionRule(Role.admin, Reach.install, "manage users, grants and tokens"),
    "secrets.manage": ActionRule(Role.admin, Reach.install, "manage vault secrets"),
}


@dataclass(frozen=True, slots=True)
class Grant:
    role: Role
    scope: Scope

    def __str__(self) -> str:
        return f"{self.role.name}@{self.scope}"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request: a user (password / JWT), an API token, or the bootstrap admin."""

    kind: str  # "user" | "token" | "bootstrap"
    name: str
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    user_id: int | None = None

    def role_at(self, scope: Scope) -> Role | None:
        """The highest role that applies to ``scope``."""
        roles = [g.role for g in self.grants if g.scope.covers(scope)]
        return max(roles) if roles else None

    def best_role(self) -> Role | None:
        """The highest role held anywhere."""
        return max((g.role for g in self.grants), default=None)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def authorize(
    principal: Principal | None, action: str, scope: Scope | None = None, *, at_least: Role | None = None
) -> Decision:
    """May ``principal`` do ``action`` on ``scope``? The only place this is decided.

    ``scope`` is the site (or organisation) of the resource for site actions; it is ignored for
    shared and installation-wide actions. ``at_least`` is a role the resource itself asks for on top
    of the action's (a playbook step's approver role): it can raise what is needed, never lower it.
    Unknown actions are denied (fail closed).
    """
    rule = ACTIONS.get(action)
    if rule is None:
        return Decision(False, f"unknown action {action!r}")
    if principal is None:
        return Decision(False, "not signed in")
    need = max(rule.role, at_least) if at_least is not None else rule.role
    if rule.reach is Reach.install:
        have = max((g.role for g in principal.grants if g.scope == GLOBAL), default=None)
        where = "the whole installation ('*')"
    elif rule.reach is Reach.any:
        have = principal.best_role()
        where = "any scope"
    else:
        target = scope or DEFAULT_SITE
        have = principal.role_at(target)
        where = str(target)
    if have is not None and have >= need:
        return Decision(True, f"{principal.name} is {have.name} on {where}")
    held = have.name if have is not None else "no role"
    why = " (the role this approval asks for)" if need > rule.role else ""
    return Decision(False, f"{action} needs {need.name}{why} on {where}; {principal.name} has {held} there")


def approval_role(name: str | None) -> Role | None:
    """The role a playbook approval names (None: the action's own floor). A name FazAI does not know
    (an old run's, or a typo that got past the schema) fails closed: only an admin may approve."""
    if not name:
        return None
    try:
        return Role.parse(name)
    except ValueError:
        return Role.admin
