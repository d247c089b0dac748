"""Registration of the command groups. One line per group keeps merges trivial."""

from __future__ import annotations

import typer


def register_all(app: typer.Typer, only: str | None = None) -> None:
    """Attach the command groups to the root ``fazai`` app: all, or only the one owning ``only``.

    ``fazai sessions`` needs only the agent group: importing every group (the KB, OPNsense, the
    model catalog…) for it would cost most of its start-up time.
    """
    # Each group module exposes `register(app)`.
    modules = COMMANDS.get(only or "", _GROUPS)
    for module_name in modules:
        module = __import__(f"fazai.cli.{module_name}", fromlist=["register"])
        module.register(app)


_GROUPS: list[str] = [
    "model",
    "model_chat",
    "tools",
    "research",
    "opnsense",
    "alerts",
    "kb",
    "facts",
    "agent",
    "ask",
    "nodes",  # `fazai nodes list|show|add|tag|untag|rm` (the inventory)
    "ssh",  # `fazai ssh trust|check|keygen`
    "enroll",  # `fazai nodes token|pending|approve|reject|revoke`; joins the `nodes` group
    "playbook",
    "metrics",
    "users",
    "audit",
    "secrets",
    "store",
]


# Top-level command → the group modules that register it, in order (a command missing here still
# works: every group is registered for it). A group other modules extend lists them all.
COMMANDS: dict[str, list[str]] = {
    "model": ["model", "model_chat"],
    "tools": ["tools"],
    "research": ["research"],
    "opnsense": ["opnsense"],
    "alerts": ["alerts"],
    "kb": ["kb"],
    "facts": ["facts"],
    "agent": ["agent"],
    "sessions": ["agent"],
    "replay": ["agent"],
    "daemon": ["agent"],
    "ask": ["ask"],
    "nodes": ["nodes", "enroll"],
}
