"""Per-command rules: what one simple command (after unwrapping sudo/env/xargs…) does to the machine.

Every rule returns findings; a command with no rule is ``changes_state`` ("when unsure, ask").
``readonly`` is imported first: a later module may give a command listed there a rule of its own.
"""

from . import readonly  # noqa: I001 - registration order matters
from . import apps, databases, disks, files, firewall, network, packages, shell, system
from . import guarded
from .base import RULES, Rule, crit, cs, de, fb, mkfs_like, op, resolve_name, ro, rule, write_target

__all__ = [
    "RULES",
    "Rule",
    "apps",
    "crit",
    "cs",
    "databases",
    "de",
    "disks",
    "fb",
    "files",
    "firewall",
    "guarded",
    "mkfs_like",
    "network",
    "op",
    "packages",
    "readonly",
    "resolve_name",
    "ro",
    "rule",
    "shell",
    "system",
    "write_target",
]
