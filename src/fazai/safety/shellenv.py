"""The shell environment FazAI's commands start in (a fresh root bash): which variables hold what, which
are inherited, which a line binds, and where ``cd`` leads. Used by the classifier to expand words."""

from __future__ import annotations

import re

ROOT_ENV = {"HOME": "/root", "USER": "root", "LOGNAME": "root", "IFS": " "}


INHERITED_ENV = frozenset(
    [
        "PATH",
        "TERM",
        "LANG",
        "LANGUAGE",
        "PWD",
        "OLDPWD",
        "SHELL",
        "SHLVL",
        "HOSTNAME",
        "HOSTTYPE",
        "OSTYPE",
        "MACHTYPE",
        "RANDOM",
        "SECONDS",
        "LINENO",
        "UID",
        "EUID",
        "PPID",
        "GROUPS",
        "MAIL",
        "EDITOR",
        "VISUAL",
        "PAGER",
        "TMPDIR",
        "TZ",
        "DISPLAY",
        "COLUMNS",
        "LINES",
        "PS1",
        "PS2",
        "PS4",
        "OPTARG",
        "OPTIND",
        "REPLY",
        "PIPESTATUS",
        "FUNCNAME",
        "HISTFILE",
        "HISTSIZE",
        "DEBIAN_FRONTEND",
    ]
)


ENV_PREFIXES = (
    "BASH",
    "LC_",
    "XDG_",
    "SSH_",
    "SUDO_",
    "FAZAI",
    "COMP_",
    "DBUS_",
    "SYSTEMD_",
    "INVOCATION_",
    "JOURNAL_",
)


def bound_names(text: str) -> set[str]:
    """Variables given a value somewhere in the text (assignments, for/select/read/getopts/mapfile)."""
    names = set(re.findall(r"(?<![\w$])([A-Za-z_]\w*)\+?=", text))
    names |= set(re.findall(r"\b(?:for|select)\s+([A-Za-z_]\w*)", text))
    for m in re.finditer(r"\b(?:read|mapfile|readarray|getopts\s+\S+)\s+([^;&|\n<>]*)", text):
        names |= {w for w in m.group(1).split() if re.fullmatch(r"[A-Za-z_]\w*", w)}
    return names


def cd_target(cwd: str | None, args: list[str], literal: bool) -> str | None:
    if not literal:
        return None
    dest = next((a for a in args if not a.startswith("-")), "~")
    if dest.startswith("/"):
        return dest
    if dest == "~" or dest.startswith("~/"):
        return "/root" + dest[1:]
    if cwd:
        return cwd.rstrip("/") + "/" + dest
    return None
