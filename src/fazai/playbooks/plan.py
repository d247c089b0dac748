"""From a playbook step and the run's context to concrete actions: what would run, where, at which
risk, needing whose approval — or why the step is skipped or refused.

The what-if (``fazai playbook test``) and the engine call the same :func:`plan_step`, so what the
what-if prints is what a run does. Addresses are checked here, before anything reaches a shell.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from fazai.playbooks.env import PlaybookEnv
from fazai.playbooks.guards import exception_for
from fazai.playbooks.schema import Playbook, Rollout, Step
from fazai.playbooks.template import TemplateError, render

_RANK = {"read_only": 0, "changes_state": 1, "destructive": 2, "forbidden": 3}


@dataclass
class Action:
    """One change on one target."""

    step: str
    kind: str
    target: str
    summary: str
    risk: str
    reasons: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    undo: str | None = None  # a sentence (what-if) — the executor knows how

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PlannedStep:
    """A step resolved against the context."""

    id: str
    kind: str
    actions: list[Action] = field(default_factory=list)
    stages: list[list[int]] = field(default_factory=list)  # indexes into actions, per rollout stage
    risk: str = "read_only"
    approval_role: str | None = None
    skipped: str | None = None  # why nothing runs (exception, protected address, `when`)
    refused: str | None = None  # why the run must stop (bad template, forbidden command)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["actions"] = [a.to_dict() for a in self.actions]
        return d


def rollout_stages(n: int, rollout: Rollout) -> list[list[int]]:
    """Indexes 0..n-1 split into canary → percent → rest (empty stages dropped)."""
    if n <= 1:
        return [list(range(n))] if n else []
    canary = min(rollout.canary, n)
    upto = max(canary, min(n, math.ceil(n * rollout.percent / 100)))
    bounds = [0, canary, upto, n]
    return [list(range(a, b)) for a, b in itertools.pairwise(bounds) if b > a]


def _ip(text: str) -> str:
    """A single address or network, normalised; ValueError otherwise (nothing else reaches a command)."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as e:
        raise ValueError(f"{text!r} is not an IP address or network") from e
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def nft_commands(ip: str, table: str, set_name: str) -> tuple[str, str]:
    """(add, undo) shell commands that put ``ip`` in an nftables set dropped on input, and take it out.

    ``add`` is one nft batch (one process, one atomic transaction): table, set and a chain of this
    set's own created when missing (``nft add`` is idempotent for them); the chain is flushed and
    given its single drop rule, so running it again never duplicates the rule.
    """
    v6 = ipaddress.ip_network(ip, strict=False).version == 6
    s = set_name + ("6" if v6 else "")
    family, addr_type = ("ip6", "ipv6_addr") if v6 else ("ip", "ipv4_addr")
    chain = f"input_{s}"
    batch = "; ".join(
        [
            f"add table inet {table}",
            f"add set inet {table} {s} {{ type {addr_type}; flags interval; }}",
            f"add chain inet {table} {chain} {{ type filter hook input priority -10; policy accept; }}",
            f"flush chain inet {table} {chain}",
            f"add rule inet {table} {chain} {family} saddr @{s} drop",
            f"add element inet {table} {s} {{ {ip} }}",
        ]
    )
    return f"nft {shlex.quote(batch)}", f"nft delete element inet {table} {s} {shlex.quote(f'{{ {ip} }}')}"


def _when_skip(step: Step, ctx: dict[str, Any]) -> str | None:
    w = step.when
    if w is None:
        return None
    res = ctx.get("steps", {}).get(w.step)
    if res is None or res.get("pending"):
        return None  # what-if: decided when the earlier step has run
    if w.status is not None and res.get("status") != w.status:
        return f"`when`: step {w.step!r} ended {res.get('status')!r}, not {w.status!r}"
    if w.answer_contains is not None and w.answer_contains.lower() not in str(res.get("answer", "")).lower():
        return f"`when`: the answer of step {w.step!r} does not contain {w.answer_contains!r}"
    return None


def _guard_ip(pb: Playbook, env: PlaybookEnv, ip: str) -> str | None:
    return env.protected.reason(ip) or exception_for(pb, ip)


def plan_step(pb: Playbook, step: Step, ctx: dict[str, Any], env: PlaybookEnv) -> PlannedStep:
    """Resolve ``step`` against ``ctx``: its actions and rollout stages, or why it is skipped/refused."""
    ps = PlannedStep(step.id or step.kind, step.kind)
    why = _when_skip(step, ctx)
    if why:
        ps.skipped = why
        return ps
    try:
        _build(pb, step, ctx, env, ps)
    except (TemplateError, ValueError, LookupError) as e:
        ps.refused = str(e)
        ps.actions = []
        return ps
    if ps.skipped:
        ps.actions = []
        return ps
    ps.risk = max((a.risk for a in ps.actions), key=_RANK.__getitem__, default="read_only")
    if ps.risk == "forbidden":
        bad = next(a for a in ps.actions if a.risk == "forbidden")
        ps.refused = f"forbidden by the safety policy: {bad.summary} ({'; '.join(bad.reasons)})"
        return ps
    ps.approval_role = pb.approvals.get(ps.risk)  # type: ignore[call-overload]
    ps.stages = (
        rollout_stages(len(ps.actions), pb.rollout) if len(ps.actions) > 1 else [[0]] * bool(ps.actions)
    )
    return ps


def _shell_risk(env: PlaybookEnv, command: str) -> tuple[str, list[str]]:
    d = env.policy.check_command(command)
    risk = "forbidden" if d.verdict == "deny" else str(getattr(d.risk, "value", d.risk))
    return risk, list(d.reasons)


def _build(pb: Playbook, step: Step, ctx: dict[str, Any], env: PlaybookEnv, ps: PlannedStep) -> None:
    sid, kind = ps.id, step.kind
    spec: Any = step.spec  # the model of this kind (checked by the schema)
    if kind == "shell":
        command = render(spec.command, ctx)
        undo = render(spec.undo, ctx) if spec.undo else None
        risk, reasons = _shell_risk(env, command)
        for t in spec.targets:
            env.node(t)
            ps.actions.append(
                Action(sid, kind, t, f"$ {command}", risk, reasons,
                       {"command": command, "timeout": spec.timeout, "undo": undo},
                       f"$ {undo}" if undo else None)
            )  # fmt: skip
    elif kind in ("block_ip", "nft_block", "alias_add"):
        ip = _ip(render(spec.ip if kind != "alias_add" else spec.address, ctx))
        guard = _guard_ip(pb, env, ip)
        if guard:
            ps.skipped = f"not blocking: {guard}"
            return
        if kind == "block_ip":
            reason = render(spec.reason, ctx)
            fw = spec.firewall or "(default firewall)"
            ttl = f" for {spec.ttl:g}s" if spec.ttl else ""
            ps.actions.append(
                Action(sid, kind, fw, f"block {ip} on {fw} (alias fazai_block){ttl}: {reason}",
                       "changes_state", ["opnsense.block_ip: declared changes_state"],
                       {"ip": ip, "reason": reason, "ttl": spec.ttl, "firewall": spec.firewall,
                        "interface": spec.interface},
                       f"unblock {ip} on {fw}")
            )  # fmt: skip
        elif kind == "alias_add":
            fw = spec.firewall or "(default firewall)"
            ps.actions.append(
                Action(sid, kind, fw, f"add {ip} to alias {spec.alias} on {fw}", "changes_state",
                       ["opnsense alias_util add: declared changes_state"],
                       {"ip": ip, "alias": spec.alias, "firewall": spec.firewall},
                       f"remove {ip} from alias {spec.alias}")
            )  # fmt: skip
        else:
            add, undo = nft_commands(ip, spec.table, spec.set)
            risk, reasons = _shell_risk(env, add)
            for node in spec.nodes:
                env.node(node)
                ps.actions.append(
                    Action(sid, kind, node, f"$ {add}", risk, reasons,
                           {"command": add, "undo": undo, "ip": ip}, f"$ {undo}")
                )  # fmt: skip
    elif kind == "rule":
        fw = spec.firewall or "(default firewall)"
        fields = {k: render(v, ctx) for k, v in spec.fields.items()}
        desc = render(spec.description, ctx)
        ps.actions.append(
            Action(sid, kind, fw, f"ensure filter rule {desc!r} on {fw} ({fields}), applied with a savepoint",
                   "changes_state", ["opnsense filter rule: declared changes_state"],
                   {"description": desc, "fields": fields, "firewall": spec.firewall},
                   f"delete rule {desc!r} if this run created it")
        )  # fmt: skip
    elif kind == "webhook":
        msg = render(spec.message, ctx)
        ps.actions.append(
            Action(sid, kind, spec.url, f"POST to {spec.url}: {msg}", "read_only", ["notification"],
                   {"url": spec.url, "message": msg, "headers": spec.headers, "timeout": spec.timeout})
        )  # fmt: skip
    elif kind == "email":
        subject, body = render(spec.subject, ctx), render(spec.body, ctx)
        to = ", ".join(spec.to)
        ps.actions.append(
            Action(sid, kind, to, f"e-mail {to} via {spec.smtp}: {subject}", "read_only", ["notification"],
                   {"to": spec.to, "subject": subject, "body": body, "smtp": spec.smtp,
                    "sender": spec.sender, "timeout": spec.timeout})
        )  # fmt: skip
    elif kind == "agent":
        goal = render(spec.goal, ctx)
        ps.actions.append(
            Action(sid, kind, "agent", f"open an agent session: {goal}", "read_only",
                   ["the session asks for its own approvals"],
                   {"goal": goal, "max_iterations": spec.max_iterations})
        )  # fmt: skip
    else:  # pragma: no cover - the schema knows every kind
        raise ValueError(f"unknown step kind {kind!r}")
