"""Environment variables that name a program or inject code (``LESSOPEN``, ``PAGER``, ``GIT_SSH_COMMAND``,
``PERL5OPT``…): setting one in front of a read-only command makes that command run something else.

Used for ``VAR=… cmd``, ``env VAR=… cmd`` and ``export VAR=…`` alike."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from .model import CHANGES_STATE, OPAQUE, READ_ONLY, Finding

# A command line the program runs (a pager, an editor, an ssh or diff replacement).
COMMAND_VARS = frozenset(
    {
        "PAGER",
        "MANPAGER",
        "SYSTEMD_PAGER",
        "GIT_PAGER",
        "EDITOR",
        "VISUAL",
        "SUDO_EDITOR",
        "GIT_EDITOR",
        "SYSTEMD_EDITOR",
        "BROWSER",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_EXTERNAL_DIFF",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
        "RSYNC_RSH",
    }
)
# less's input preprocessor: run as a shell command for every file less opens.
LESS_HOOKS = frozenset({"LESSOPEN", "LESSCLOSE"})
# Code injected into every interpreter / shell / dynamic loader that reads it.
INJECT_VARS = frozenset(
    {"PERL5OPT", "PYTHONSTARTUP", "NODE_OPTIONS", "RUBYOPT", "LD_AUDIT", "PROMPT_COMMAND", "PYTHONWARNINGS"}
)
PROGRAM_VARS = COMMAND_VARS | LESS_HOOKS | INJECT_VARS | {"LESS"}

# Pagers that only show text: PAGER=cat keeps systemctl/git/man read-only.
SAFE_VIEWERS = frozenset({"cat", "less", "more", "most", "head", "tail", "pg", "bat", "batcat", "tee"})


def less_options_read_only(tokens: list[str]) -> bool:
    """True when these ``less`` options only display: no log file (-o/-O), no initial command that
    escapes to a shell or pipes (``+!cmd``, ``+|cmd``), no lesskey source compiled at start."""
    for t in tokens:
        if t.startswith("+"):
            if not re.fullmatch(r"\+(F|G|g|\d+[gG%]?|/[^!|\n]*)", t):
                return False
        elif t.startswith("--"):
            if t.split("=", 1)[0] in {"--log-file", "--LOG-FILE", "--lesskey-src", "--lesskey-content"}:
                return False
        elif t.startswith("-") and ("o" in t[1:2] or "O" in t[1:2]):
            return False
    return True


def program_var(
    name: str, value: str, computed: bool, classify_code: Callable[[str], list[Finding]]
) -> list[Finding]:
    """Findings for assigning ``value`` to the program-naming variable ``name`` (none when harmless)."""
    if computed or "$" in value or "`" in value:
        return [Finding(OPAQUE, f"{name} is set to a computed value: the program it names is not known")]
    value = value.strip()
    if name in INJECT_VARS:
        return [Finding(OPAQUE, f"{name}=…: injects code into the programs that read it")]
    if name == "LESS":
        try:
            ok = less_options_read_only(shlex.split(value))
        except ValueError:
            ok = False
        return (
            [] if ok else [Finding(OPAQUE, f"LESS={value[:40]!r}: less options that write or run commands")]
        )
    if not value:
        return []
    if name in LESS_HOOKS:
        code = re.sub(r"^\s*\|?\|?-?", "", value).replace("%s", "/tmp/less-input")
        found = classify_code(code)
        return [Finding(OPAQUE, f"{name}: less runs {value[:50]!r} as a shell command for each file")] + [
            f.but(f"{name}: {f.reason}") for f in found if f.risk > CHANGES_STATE
        ]
    found = classify_code(value)
    try:
        first = shlex.split(value)[0].rsplit("/", 1)[-1]
    except (ValueError, IndexError):
        first = ""
    if first in SAFE_VIEWERS and all(f.risk == READ_ONLY for f in found):
        return []
    return [Finding(OPAQUE, f"{name}={value[:50]!r}: the command runs it as a program")] + [
        f.but(f"{name}: {f.reason}") for f in found if f.risk > CHANGES_STATE
    ]
