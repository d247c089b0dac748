"""The rule registry and helpers every rule module uses."""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from .. import paths
from ..cmd import SYSTEM_BIN_DIRS, Cmd, Ctx
from ..model import CHANGES_STATE, DESTRUCTIVE, FORBIDDEN, OPAQUE, READ_ONLY, Finding

Rule = Callable[[Cmd, Ctx], list[Finding]]
RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    """Register a rule for these command names (a later registration replaces an earlier one)."""

    def deco(fn: Rule) -> Rule:
        for n in names:
            RULES[n] = fn
        return fn

    return deco


def ro(what: str) -> list[Finding]:
    return [Finding(READ_ONLY, f"{what}: read-only")]


def cs(what: str) -> list[Finding]:
    return [Finding(CHANGES_STATE, what)]


def de(what: str) -> list[Finding]:
    return [Finding(DESTRUCTIVE, what)]


def op(what: str) -> list[Finding]:
    """Opaque: code or data the classifier cannot see; asked, never approved by --yes."""
    return [Finding(OPAQUE, what)]


def crit(what: str) -> list[Finding]:
    """Security-critical state (firewall, uid 0, authorized_keys, sudoers, setuid): destructive, and only
    an operator's explicit approval runs it."""
    return [Finding(DESTRUCTIVE, what, critical=True)]


def fb(what: str) -> list[Finding]:
    return [Finding(FORBIDDEN, what)]


def write_target(path: str, *, append: bool, who: str) -> list[Finding]:
    """Risk of writing ``path`` (by a redirection, tee, cp/dd destination…)."""
    if paths.is_harmless_sink(path):
        return []
    if "$" in path or "`" in path:
        return cs(f"{who} writes to a path computed at run time ({path})")
    p = paths.norm(path)
    if paths.NET_DEVICE.match(p):
        return op(f"{who} to {p}: sends data over a network socket")
    if paths.is_block_device(p):
        return fb(f"{who} writes to the block/memory device {p}: destroys the disk or the kernel's memory")
    if p == "/proc/sysrq-trigger":
        return fb(f"{who} writes to /proc/sysrq-trigger: crashes, reboots or powers off the machine at once")
    if paths.is_auth_file(p):
        if append:
            return crit(f"{who} appends to {p}, an account/auth file")
        return [Finding(FORBIDDEN, f"{who} overwrites {p}: locks every user (and root) out", critical=True)]
    if paths.is_security_file(p):
        return crit(f"{who} writes {p}: changes who may log in or act as root")
    if p.startswith("/boot/") or p == "/boot":
        return de(f"{who} writes into /boot: can leave the machine unbootable")
    return cs(f"{who} writes {p}")


def resolve_name(name: str) -> tuple[str, bool]:
    """Map ``/usr/bin/rm`` → ``rm``. The flag says whether the path is a trusted system directory
    (a copy called ``ls`` in /tmp is not the real ls)."""
    if "/" not in name:
        return name, True
    d, base = posixpath.split(name)
    return base, posixpath.normpath(d) in SYSTEM_BIN_DIRS


def mkfs_like(name: str) -> bool:
    return name == "mkfs" or name.startswith(("mkfs.", "mke2fs", "mkfs-", "mkdosfs", "mkntfs"))
