"""One simple command after parsing: its words, what feeds its stdin, and option helpers for rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .model import Finding

# Directories whose binaries we trust to be the real thing when a command is spelled with its full path.
SYSTEM_BIN_DIRS = frozenset({"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"})


@dataclass
class Arg:
    """One word of a command: its shell-unquoted text and whether it is a plain literal."""

    text: str
    literal: bool = True
    # The bashlex node of a $(…) / <(…) inside this word, when the word is exactly one substitution.
    source: Any = None


@dataclass
class Stdin:
    """What the command reads on stdin: the commands before it in a pipeline, or a here-string/here-doc."""

    upstream: list[list[str]] = field(default_factory=list)
    text: str | None = None
    upstream_here: list[str | None] = field(default_factory=list)  # here-strings fed to upstream commands
    piped: str | None = None  # what a literal upstream pipeline (echo/printf/base64 -d…) writes, if known
    file: str | None = None  # `cmd < FILE`: the file read on stdin

    @property
    def fed(self) -> bool:
        """Something feeds stdin: a pipeline, a here-string/here-doc or a file."""
        return bool(self.upstream) or self.text is not None or self.file is not None

    @property
    def content(self) -> str | None:
        """The literal text arriving on stdin, when it can be known."""
        return self.text if self.text is not None else self.piped


@dataclass
class Ctx:
    """What a rule may use besides the words: recursion into inner shell code, stdin, cwd."""

    classify_code: Callable[[str], list[Finding]]
    stdin: Stdin | None = None
    cwd: str | None = None
    evaluate: Callable[[Any], str | None] | None = None  # evaluates a substitution node to text, if it can
    files: dict[str, str] = field(
        default_factory=dict
    )  # files written earlier on the line, with known content

    def written(self, path: str) -> str | None:
        """Content of a script written earlier on the same line (``echo … > x.sh; bash x.sh``)."""
        from .paths import norm

        return self.files.get(norm(path, self.cwd))


@dataclass
class Cmd:
    """A command's words, starting with the command name."""

    args: list[Arg]

    @property
    def argv(self) -> list[str]:
        return [a.text for a in self.args]

    @property
    def name(self) -> str:
        return self.args[0].text if self.args else ""

    def shift(self, n: int) -> Cmd:
        return Cmd(self.args[n:])


def split_opts(args: Iterable[str], with_value: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """Split arguments into options and positionals. Options listed in ``with_value`` consume the next word
    (``-u root``); ``--`` ends options. Good enough for classification, not a full getopt."""
    wv = set(with_value)
    opts: list[str] = []
    pos: list[str] = []
    it = iter(args)
    for a in it:
        if a == "--":
            pos.extend(it)
            break
        if a.startswith("-") and a != "-":
            opts.append(a)
            if a in wv:
                nxt = next(it, None)
                if nxt is not None:
                    opts.append(nxt)
        else:
            pos.append(a)
    return opts, pos


def has_short(opts: Iterable[str], letters: str) -> bool:
    """True when any single-dash option cluster (``-rf``) contains one of ``letters``."""
    return any(re.fullmatch(r"-[A-Za-z0-9]+", o) and any(c in o[1:] for c in letters) for o in opts)


def has_long(opts: Iterable[str], *names: str) -> bool:
    """True when a long option (``--force`` or ``--force=…``) is present."""
    return any(o.startswith("--") and o.split("=", 1)[0] in names for o in opts)


def first_positional(args: list[str], with_value: Iterable[str] = ()) -> tuple[str | None, list[str]]:
    """The first non-option word (a subcommand) and the words after it."""
    wv = set(with_value)
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if a.startswith("-") and a != "-":
            i += 2 if a in wv else 1
            continue
        return a, args[i + 1 :]
    return (args[i], args[i + 1 :]) if i < len(args) else (None, [])
