"""Concrete values in a text: numbers with units, percentages, sizes, durations, counts, paths, IPs,
versions, clock times, dates and identifier-shaped names.

The same extractor reads an answer and the evidence it must be grounded in, so both sides speak the
same types. Spans never overlap: the most specific reading of a stretch of text wins (an IP is not
four numbers, ``db-dump-2026-11-01.sql`` is one name, ``5 hours, 16 minutes`` one duration).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    "url", "ip", "email", "path", "date", "time", "version", "percent", "size", "duration", "number", "name"
]

# Multipliers to bytes. Single letters are the `ls -h`/`df -h`/`free -h` spellings (powers of 1024).
_SIZE_UNITS: dict[str, float] = {
    "b": 1, "byte": 1, "bytes": 1,
    "k": 1024, "kb": 1000, "kib": 1024, "ki": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2, "mi": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3, "gi": 1024**3,
    "t": 1024**4, "tb": 1000**4, "tib": 1024**4, "ti": 1024**4,
    "p": 1024**5, "pb": 1000**5, "pib": 1024**5,
}  # fmt: skip
_SIZE_RE = r"(?:[KMGTP]i?B?|[kKMGTP]B|bytes?|B|[KMGTP]i)"

_DURATION_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "segundo": 1, "segundos": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60, "minuto": 60, "minutos": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "hora": 3600, "horas": 3600,
    "d": 86400, "day": 86400, "days": 86400, "dia": 86400, "dias": 86400,
    "w": 604800, "wk": 604800, "wks": 604800, "week": 604800, "weeks": 604800,
    "semana": 604800, "semanas": 604800,
    "month": 2629800, "months": 2629800, "year": 31557600, "years": 31557600,
}  # fmt: skip
# Words in any case; single letters only in lower case (``25M`` is a size, ``25m`` minutes).
_DUR_WORD = (
    r"(?:(?i:ms|seconds?|secs?|minutes?|mins?|hours?|hrs?|hr|days?|weeks?|wks?|wk|months?|years?"
    r"|segundos?|minutos?|horas?|dias?|semanas?)|[smhdw])"
)
_NUM = r"\d+(?:[.,]\d+)?"

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"

# Ordered: earlier patterns claim their spans first.
_PATTERNS: list[tuple[Kind, re.Pattern[str]]] = [
    ("url", re.compile(r"\b(?:https?|ftp)://[^\s'\"<>`]+")),
    ("email", re.compile(r"\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b")),
    (
        "ip",
        re.compile(
            r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?::\d{1,5})?(?![\w.]*\d)"
            r"|(?<![\w:])(?=[0-9a-fA-F:]*[a-fA-F:]{2})(?:[0-9a-fA-F]{1,4}:){1,7}:?(?:[0-9a-fA-F]{1,4})?"
            r"(?:/\d{1,3})?(?![\w:])|(?<![\w:])::[0-9a-fA-F]{1,4}(?![\w:])"
        ),
    ),
    ("path", re.compile(r"(?:(?<=^)|(?<=[\s'\"`(\[=,:]))~?/(?:[\w.@%+=:,~-]+/?)*")),
    (
        "date",
        re.compile(
            rf"\b\d{{4}}-\d{{2}}-\d{{2}}(?:[T ]\d{{2}}:\d{{2}}(?::\d{{2}})?(?:\.\d+)?Z?)?\b"
            rf"|\b(?:{_MONTHS})[a-z]*\.? +\d{{1,2}}(?:,? +\d{{4}})?\b"
            rf"|\b\d{{1,2}} +(?:{_MONTHS})[a-z]*\.?(?: +\d{{4}})?\b",
            re.I,
        ),
    ),
    ("time", re.compile(r"(?<![\w:.])\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\.?)?(?![\w:])", re.I)),
    (
        "duration",
        re.compile(
            rf"(?<![\w.]){_NUM}\s?{_DUR_WORD}\b(?:(?:,\s*|\s+and\s+|\s+e\s+|\s+){_NUM}\s?{_DUR_WORD}\b)*"
        ),
    ),
    ("percent", re.compile(rf"(?<![\w.]){_NUM}\s?%")),
    ("size", re.compile(rf"(?<![\w.]){_NUM}\s?{_SIZE_RE}(?![\w])")),
    (
        "version",
        re.compile(r"(?<![\w.])v?\d+(?:\.\d+){2,}(?:[-+~][\w.+~-]*\w)?(?![\w])|(?<![\w.])v\d+\.\d+\b"),
    ),
    # File modes as `ls -l` and `stat -c %A` print them.
    ("name", re.compile(r"(?<!\S)[-dlcbps]?[r-][w-][xsS-][r-][w-][xsS-][r-][w-][xtT-][.+@]?(?!\S)")),
    # Time zones and other Capitalised/Words (Etc/UTC, America/Sao_Paulo).
    ("name", re.compile(r"(?<![\w/])[A-Z][a-z]+/[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_]+)?(?![\w/])")),
    # Identifier-shaped: a word with a digit, or joined by -, _ or . (payments-api, nginx.service, sdb1).
    (
        "name",
        re.compile(
            r"(?<![\w@/.-])(?=[\w.-]*[A-Za-z])[A-Za-z0-9][\w]*(?:[-_.][\w]+)+(?![\w/-])"
            r"|(?<![\w@/.-])(?=\w*[A-Za-z])(?=\w*\d)[A-Za-z]\w*(?![\w/-])"
        ),
    ),
    ("number", re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)?(?![\w])")),
]


def words_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Quoted or back-ticked words are names whatever their shape ("the `memhog` process").
_QUOTED = re.compile(r"`([^`\s]{2,64})`|\"([^\"\s]{2,64})\"|'([^'\s]{2,64})'")
# Single words that the text itself says are names: after a type word, or items of a list after ':'.
_TYPE_WORDS = (
    "user|users|group|groups|service|services|unit|units|process|processes|package|packages|jail|jails|"
    "host|hostname|interface|container|containers|program|daemon|module|table|chain|set|zone|database|"
    "account|owner|shell|utilizador|usuário|usuario|serviço|servico|processo|pacote|grupo"
)
_AFTER_TYPE = re.compile(rf"\b(?:{_TYPE_WORDS})\s+(?:named\s+|called\s+|is\s+)?([a-z][\w-]{{1,40}})\b", re.I)
_BEFORE_TYPE = re.compile(
    r"\b([a-z][\w-]{1,40})\s+(?:service|unit|process|package|jail|daemon|user|group|container)\b", re.I
)
_LIST_AFTER_COLON = re.compile(
    r":\s*([a-z][\w-]*(?:\s*(?:,|\band\b|\be\b)\s*[a-z][\w-]*)+)\s*(?:[.;]|$)", re.I
)
# Words that look like names in those positions but are grammar, not values.
_NOT_NAMES = words_set(
    "a an the is are was were be been being has have had it its this that these those there here no "
    "not none any all some each every of on in at to for from by with and or but if then than as is "
    "running active inactive failed stopped enabled disabled installed present missing available "
    "found named called using used uses use which what who whose how many much most more less only "
    "also yes o a os as um uma de do da dos das no na nos nas em e ou que com sem por para é são está "
    "estão root"
)


# Hyphenated English, not identifiers.
_PROSE_HYPHENATED = words_set(
    "read-only read-write up-to-date built-in non-interactive real-time well-known so-called one-liner "
    "one-liners long-running short-lived high-performance low-level high-level world-readable "
    "world-writable self-signed third-party open-source end-to-end case-insensitive case-sensitive "
    "e-mail re-run log-in set-up start-up follow-up top-level sub-directory x86-64"
)


@dataclass(frozen=True, slots=True)
class Value:
    """One concrete value in a text.

    ``number`` is the value in base units (bytes, seconds, percent points, plain number) when the kind
    has one; ``unit_step`` is the answer's precision in base units (``23 GiB`` → 1 GiB) for tolerant
    comparison; ``norm`` is the canonical text used for literal matching.
    """

    kind: Kind
    text: str
    start: int
    end: int
    number: float | None = None
    unit_step: float | None = None
    norm: str = ""


def _num(s: str) -> float:
    return float(s.replace(",", "."))


def _decimals(s: str) -> int:
    m = re.search(r"[.,](\d+)$", s)
    return len(m.group(1)) if m else 0


def _size(text: str) -> tuple[float, float] | None:
    m = re.match(rf"({_NUM})\s?({_SIZE_RE})$", text.strip())
    if not m:
        return None
    mult = _SIZE_UNITS.get(m.group(2).lower())
    if mult is None:
        return None
    n = _num(m.group(1))
    return n * mult, mult * 10 ** -_decimals(m.group(1))


def duration_seconds(text: str) -> tuple[float, float] | None:
    """``5 hours, 16 minutes`` → (18960.0, 60.0): seconds, and the smallest unit written."""
    total, step, found = 0.0, None, False
    for m in re.finditer(rf"({_NUM})\s?({_DUR_WORD})\b", text):
        unit = _DURATION_UNITS.get(m.group(2).lower())
        if unit is None:
            continue
        found = True
        total += _num(m.group(1)) * unit
        this = unit * 10 ** -_decimals(m.group(1))
        step = this if step is None else min(step, this)
    return (total, step or 1.0) if found else None


def _parse(kind: Kind, text: str) -> tuple[float | None, float | None, str]:
    t = text.strip()
    if kind == "percent":
        n = t.rstrip("%").strip()
        return _num(n), 10 ** -_decimals(n), n
    if kind == "size":
        parsed = _size(t)
        return (parsed[0], parsed[1], t.lower()) if parsed else (None, None, t.lower())
    if kind == "duration":
        parsed = duration_seconds(t)
        return (parsed[0], parsed[1], t.lower()) if parsed else (None, None, t.lower())
    if kind == "number":
        return _num(t), 10 ** -_decimals(t), t
    if kind == "ip":
        return None, None, t.lower().removesuffix("/32")
    if kind == "path":
        return None, None, t.rstrip(".,;:").rstrip("/") or "/"
    if kind == "version":
        return None, None, t.lower().removeprefix("v")
    return None, None, t.lower()


def extract_values(text: str) -> list[Value]:
    """Every concrete value in ``text``, in order of appearance, spans not overlapping."""
    taken = [False] * (len(text) + 1)
    found: list[Value] = []

    def claim(kind: Kind, start: int, end: int) -> None:
        raw = text[start:end]
        if kind == "path":  # a sentence's full stop or comma is not part of the path
            stripped = raw.rstrip(".,;:)")
            end = start + len(stripped)
            raw = stripped
            if raw in ("/", "~/") and end < len(text) and text[end : end + 1].isalnum():
                return  # "and/or", "TCP/UDP"
        if not raw.strip() or any(taken[start:end]):
            return
        if kind == "name" and raw.lower() in _PROSE_HYPHENATED:
            return
        number, step, norm = _parse(kind, raw)
        for i in range(start, end):
            taken[i] = True
        found.append(Value(kind, raw, start, end, number, step, norm))

    for m in _QUOTED.finditer(text):  # `nginx:1.25`, `deploy@web-01`: one name, not a name and a number
        g = next(i for i in (1, 2, 3) if m.group(i))
        if re.fullmatch(r"[A-Za-z][\w.-]*[:@][\w.-]+", m.group(g)):
            claim("name", m.start(g), m.end(g))
    for kind, rx in _PATTERNS:
        for m in rx.finditer(text):
            claim(kind, m.start(), m.end())
    for m in _QUOTED.finditer(text):
        g = next(i for i in (1, 2, 3) if m.group(i))
        if not re.search(r"\d|[A-Za-z]", m.group(g)) or m.group(g).lower() in _NOT_NAMES:
            continue
        claim("name", m.start(g), m.end(g))
    for rx in (_AFTER_TYPE, _BEFORE_TYPE):
        for m in rx.finditer(text):
            if m.group(1).lower() not in _NOT_NAMES:
                claim("name", m.start(1), m.end(1))
    for m in _LIST_AFTER_COLON.finditer(text):
        for w in re.finditer(r"[a-z][\w-]*", m.group(1), re.I):
            if w.group(0).lower() not in _NOT_NAMES and w.group(0).lower() not in ("and", "e"):
                claim("name", m.start(1) + w.start(), m.start(1) + w.end())
    found.sort(key=lambda v: v.start)
    return found


def short_answer_names(text: str, found: list[Value]) -> list[Value]:
    """In an answer of at most three words ("root", "drop", "Etc/UTC"), the words are the values."""
    words = list(re.finditer(r"[^\W\d_][\w-]*", text))
    if not words or len(words) > 2 or any(v.kind != "number" for v in found):
        return []
    taken = {i for v in found for i in range(v.start, v.end)}
    return [
        Value("name", m.group(0), m.start(), m.end(), norm=m.group(0).lower())
        for m in words
        if m.start() not in taken and m.group(0).lower() not in _STOP
    ]


_WORD = re.compile(r"[a-zà-ú][a-zà-ú0-9]+", re.I)
_STOP = words_set(
    "the a an is are was were be been has have had of on in at to for from by with and or but not no "
    "this that these those it its there here which what who how many much most more less than as into "
    "out up down all any each every some only also there their they them you your yes none total "
    "number currently current listed list show shows shown found lines line file files value values "
    "named o a os as um uma de do da dos das em no na nos nas e ou que com sem por para quantos "
    "quantas qual quais é são está estão does do did done can could would should will may might must "
    "get got use uses used using we our us me my there since ever"
)


def content_words(text: str) -> set[str]:
    """Lower-case content words, lightly stemmed (plural/verb endings), for relatedness checks."""
    out: set[str] = set()
    for w in _WORD.findall(text.lower()):
        if w in _STOP or len(w) < 3:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                w = w[: -len(suffix)]
                break
        out.add(w)
    return out


def words_related(a: set[str], b: set[str]) -> bool:
    """Whether two sets of content words share a word (or one is a 3+ letter prefix of the other:
    ``mem`` ~ ``memory``)."""
    if a & b:
        return True
    return any(x.startswith(y) or y.startswith(x) for x in a for y in b if min(len(x), len(y)) >= 3)


_TIMESTAMPS = (
    # openssl x509 -enddate, `date`: "Mar  3 12:00:00 2027 GMT"
    (re.compile(r"\b([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}:\d{2}:\d{2}) (\d{4})(?: (?:GMT|UTC))?\b"),
     lambda m: f"{m[1]} {m[2]} {m[3]} {m[4]}", "%b %d %H:%M:%S %Y"),
    # ISO 8601 / journal --output=short-iso: "2027-03-03T12:00:00" or "2027-03-03 12:00:00"
    (re.compile(r"\b(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})"),
     lambda m: f"{m[1]} {m[2]}", "%Y-%m-%d %H:%M:%S"),
)  # fmt: skip


def parse_timestamp(text: str) -> float | None:
    """The first full date-and-time in ``text`` as seconds since the epoch (UTC), or None."""
    from calendar import timegm
    from time import strptime

    for pattern, norm, fmt in _TIMESTAMPS:
        if m := pattern.search(text):
            try:
                return float(timegm(strptime(norm(m), fmt)))
            except ValueError:
                continue
    return None
