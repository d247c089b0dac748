"""Shell builtins with rules of their own (export, alias, trap, watch…)."""

from __future__ import annotations

import re

from ..cmd import Cmd, Ctx, first_positional
from ..model import Finding
from ..progvars import PROGRAM_VARS, program_var
from .base import cs, ro, rule


@rule("export", "declare", "typeset", "local", "readonly")
def _export(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    for arg in cmd.args[1:]:
        var, eq, val = arg.text.partition("=")
        if eq and var in PROGRAM_VARS:
            found = program_var(var, val, not arg.literal, ctx.classify_code)
            if found:
                return found
    for a in cmd.argv[1:]:
        if re.match(r"(PATH|LD_PRELOAD|LD_LIBRARY_PATH|BASH_ENV|ENV|IFS|PROMPT_COMMAND|SHELLOPTS|PS4)=", a):
            return cs(f"export {a.split('=')[0]} changes how later commands resolve/run")
    return ro("export")


@rule("alias")
def _alias(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    out: list[Finding] = []
    for a in cmd.argv[1:]:
        if "=" in a:
            out += ctx.classify_code(a.split("=", 1)[1])
            out += cs(f"alias {a.split('=')[0]} redefines a command name")
    return out or ro("alias listing")


@rule("unalias", "unset", "enable")
def _unset(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    return cs(f"{cmd.name} changes what later command names mean") if cmd.name != "unset" else ro("unset")


@rule("trap")
def _trap(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    args = cmd.argv[1:]
    if not args or args[0] in {"-l", "-p"}:
        return ro("trap -l")
    return ctx.classify_code(args[0]) + ro("trap handler")


@rule("watch")
def _watch(cmd: Cmd, ctx: Ctx) -> list[Finding]:
    head, tail = first_positional(cmd.argv[1:], {"-n", "--interval", "-q", "--equexit"})
    pos = [head, *tail] if head is not None else []
    return [f.but(f"watch: {f.reason}") for f in ctx.classify_code(" ".join(pos))] if pos else ro("watch")
