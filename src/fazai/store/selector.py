"""Node selectors: ``site=sp,tag=web`` — ``key=value`` terms joined by commas, all of which must hold.

Keys: ``name``, ``org``, ``site``, ``group``, ``transport``, ``tag`` (the node has that tag); any other
key is a label (``env=prod``). A value with ``*``, ``?`` or ``[`` is a shell-style pattern
(``name=web-*``). Matching is case-sensitive, like the names themselves.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FIELDS = ("name", "org", "site", "group", "transport")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")


class SelectorError(ValueError):
    """A selector that cannot be read; the message shows the expected form."""


@dataclass(frozen=True, slots=True)
class Term:
    """One ``key=value`` condition."""

    key: str
    value: str

    def matches(self, got: str | None) -> bool:
        if got is None:
            return False
        if any(ch in self.value for ch in "*?["):
            return fnmatch.fnmatchcase(got, self.value)
        return got == self.value


@dataclass(frozen=True, slots=True)
class Selector:
    """All of ``terms`` must hold (comma = AND)."""

    terms: tuple[Term, ...]

    def matches(
        self, fields: Mapping[str, str | None], tags: Sequence[str], labels: Mapping[str, str]
    ) -> bool:
        """True when a node with these fields, tags and labels is selected."""
        for t in self.terms:
            if t.key == "tag":
                if not any(t.matches(tag) for tag in tags):
                    return False
            elif t.key in FIELDS:
                if not t.matches(fields.get(t.key)):
                    return False
            elif not t.matches(labels.get(t.key)):
                return False
        return True

    def __str__(self) -> str:
        return ",".join(f"{t.key}={t.value}" for t in self.terms)


def parse_selector(text: str) -> Selector:
    """Parse ``key=value[,key=value…]``; :class:`SelectorError` says what is wrong."""
    terms: list[Term] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise SelectorError(
                f"empty term in node selector {text!r}: write key=value pairs joined by commas, "
                "e.g. 'site=sp,tag=web'"
            )
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise SelectorError(
                f"{part!r} in node selector {text!r} is not key=value (e.g. site=sp, tag=web, name=web-*)"
            )
        if not _KEY.match(key):
            raise SelectorError(f"{key!r} is not a valid selector key (letters, digits, _ . -)")
        terms.append(Term(key, value))
    return Selector(tuple(terms))
