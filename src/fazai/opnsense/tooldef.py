"""The definition of a built-in OPNsense agent tool and the helpers that declare one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fazai.opnsense.diff import Result
from fazai.opnsense.firewall import Firewall

RiskClass = Literal["read_only", "changes_state", "destructive"]


@dataclass
class ToolContext:
    """What a tool needs: a way to get a connected :class:`Firewall`, and the session's dry-run flag."""

    get_firewall: Callable[[str | None], Awaitable[Firewall]]
    dry_run: bool = False
    # Progress lines of a long operation (a firmware update): the use_tool run's ``ctx.log``.
    log: Callable[[str], Any] | None = None


@dataclass(frozen=True)
class ToolDef:
    """A built-in tool definition."""

    name: str
    description: str
    inputs: dict[str, Any]
    risk: RiskClass
    run: Callable[[dict[str, Any], ToolContext], Awaitable[dict[str, Any]]]
    # Why these arguments are security-critical (open the firewall, disable rules, go live), or None.
    # The safety policy then needs an operator's explicit approval: never --yes, never auto_approve.
    critical: Callable[[dict[str, Any]], str | None] | None = None
    # ``verify(fw, args, result)``: the tool's own check that its change took, for operations that a
    # second dry run cannot judge (an update, a restart, a revert); None: plan the change again.
    verify: Callable[[Firewall, dict[str, Any], dict[str, Any]], Awaitable[dict[str, Any]]] | None = None

    def spec(self) -> dict[str, Any]:
        """What the prompt shows the model (no callables)."""
        return {"name": self.name, "description": self.description, "inputs": self.inputs, "risk": self.risk}


class ToolInputError(ValueError):
    """The arguments do not match the tool's input schema."""


_TYPES = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


def check_args(schema: dict[str, Any], args: dict[str, Any]) -> None:
    """Minimal JSON-Schema check (required, types, enums, no unknown keys) with clear messages."""
    props = schema.get("properties", {})
    missing = [k for k in schema.get("required", []) if k not in args]
    if missing:
        raise ToolInputError(f"missing argument(s): {', '.join(missing)}")
    for k, v in args.items():
        if k not in props:
            raise ToolInputError(f"unknown argument {k!r}; expected one of: {', '.join(props)}")
        p = props[k]
        t = _TYPES.get(p.get("type", ""), object)
        if (isinstance(v, bool) and p.get("type") in ("integer", "number")) or not isinstance(v, t):
            raise ToolInputError(f"argument {k!r} must be {p.get('type')}, got {type(v).__name__}")
        if "enum" in p and v not in p["enum"]:
            raise ToolInputError(f"argument {k!r} must be one of {p['enum']}, got {v!r}")


def _schema(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    props = {
        "firewall": {"type": "string", "description": "registered firewall name (default: the only one)"},
        **props,
    }
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


_DRY = {"dry_run": {"type": "boolean", "description": "compute the diff without changing anything"}}
_STR = {"type": "string"}


def _always(why: str) -> Callable[[dict[str, Any]], str | None]:
    return lambda _args: why


def _rule_critical(a: dict[str, Any]) -> str | None:
    """ensure_rule: going live at once, allowing traffic or disabling a rule needs an operator."""
    if a.get("apply"):
        return "applies the rule change to the live firewall at once"
    if a.get("action") == "pass":
        return "the rule allows traffic through the firewall"
    if a.get("enabled") is False:
        return "the rule is disabled"
    return None


def _tool(
    name: str,
    description: str,
    risk: RiskClass,
    inputs: dict[str, Any],
    critical: Callable[[dict[str, Any]], str | None] | None = None,
):
    def deco(fn: Callable[[Firewall, dict[str, Any], bool], Awaitable[Result | dict[str, Any]]]) -> ToolDef:
        async def run(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
            check_args(inputs, args)
            fw = await ctx.get_firewall(args.get("firewall"))
            dry = bool(args.get("dry_run", False)) or ctx.dry_run
            out = await fn(fw, args, dry)
            return out.to_dict() | {"dry_run": dry} if isinstance(out, Result) else out

        return ToolDef(name, description, inputs, risk, run, critical)

    return deco
