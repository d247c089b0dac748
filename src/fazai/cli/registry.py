"""Registration of the command groups. One line per group keeps merges trivial."""

from __future__ import annotations

import typer


def register_all(app: typer.Typer) -> None:
    """Attach every command group to the root ``fazai`` app."""
    # Each group module exposes `register(app)`.
    for module_name in _GROUPS:
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
