"""When bashlex cannot parse a line: split it on shell operators with shlex and judge each piece.
The result is at least opaque."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from . import rules
from .cmd import Arg, Cmd, Ctx
from .dispatch import classify_argv
from .model import OPAQUE, Finding


def fallback(
    text: str, classify_code: Callable[[str], list[Finding]], extra_ro: frozenset[str], why: str
) -> list[Finding]:
    """Judge ``text`` piece by piece; ``classify_code`` judges nested shell code (``bash -c …``)."""
    floor = Finding(OPAQUE, f"could not parse the command ({why[:80]}): cannot see what it runs")
    out = [floor]
    try:
        lex = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
        lex.whitespace_split = True
        lex.commenters = ""
        tokens = list(lex)
    except ValueError:
        tokens = re.split(r"\s+|(?=[;&|()<>])|(?<=[;&|()<>])", text)
        tokens = [t for t in tokens if t]
    pieces: list[list[str]] = [[]]
    redir_next = None
    for t in tokens:
        if t and set(t) <= set(";&|()"):
            pieces.append([])
            redir_next = None
        elif t and set(t) <= set("<>&"):
            redir_next = t
        elif redir_next is not None:
            if ">" in redir_next:
                out += rules.write_target(t, append=">>" in redir_next, who=f"redirection {redir_next}")
            redir_next = None
        else:
            pieces[-1].append(t)
    ctx = Ctx(classify_code=classify_code, stdin=None)
    skip = {
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "do",
        "done",
        "while",
        "until",
        "for",
        "in",
        "case",
        "esac",
        "{",
        "}",
        "!",
        "[[",
        "]]",
        "function",
        "select",
        "time",
        "coproc",
    }
    for p in pieces:
        while p and (
            p[0] in skip or re.fullmatch(r"\w+=\S*", p[0]) or (p[0].endswith(")") and len(p[0]) < 20)
        ):
            p = p[1:]
        if not p:
            continue
        literal = not re.search(r"[$`*?{]", p[0])
        try:
            out += classify_argv(
                Cmd([Arg(p[0], literal), *[Arg(x, "$" not in x and "`" not in x) for x in p[1:]]]),
                ctx,
                extra_ro,
            )
        except Exception:
            out.append(floor)
    # Anything below the floor is raised to it: unparsed code is opaque, never read-only or routine.
    return [f if f.risk >= OPAQUE else f.but(f.reason + " (unparsed context)", OPAQUE) for f in out]
