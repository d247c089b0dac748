"""Reading a question for a recipe: its parts, and the values a recipe's command needs.

A multi-part question ("How long has this machine been up, and how full is its root filesystem?")
splits into parts that are answered one by one. A recipe's slots (``{path}``, ``{user}``,
``{service}``…) are filled from the part's own words; a value the part names that no slot takes means
the recipe answers a different question ("banned in the sshd jail" is not "banned in total").
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from fazai.answers.values import Value, content_words, extract_values, words_set

_QUESTION_WORDS = (
    r"how|what|which|who|whose|when|where|why|is|are|does|do|did|can|has|have|quant[oa]s?|qual|quais|quem|"
    r"por ?que|quando|onde|como|h[aá]|est[aá]|existe"
)
_SPLIT = re.compile(rf"\?\s*|;\s*|,?\s+(?:and|e)\s+(?=(?:{_QUESTION_WORDS})\b)", re.I)


def split_question(text: str) -> list[str]:
    """The independent parts of a question (one part when it is a single question).

    A part that only points back ("Is any filesystem above 90%? Which one?") is not a question of its
    own: it stays with the part before it, so the recipe that answers that part answers both.
    """
    parts: list[str] = []
    for p in _SPLIT.split(text):
        p = p.strip(" ,.") if p else ""
        if not p.strip(" ,.?"):
            continue
        if parts and _points_back(p):
            parts[-1] = f"{parts[-1]}? {p}"
        else:
            parts.append(p)
    return parts or [text.strip()]


_POINTERS = words_set("one ones it them those these where qual quais")
_FOLLOW_UP = re.compile(r"^(?:which|what|where|qual|quais|onde)\b", re.I)


def _points_back(part: str) -> bool:
    # "Which one", "which ones", "where": no content word of its own beyond a pointer.
    return bool(_FOLLOW_UP.match(part)) and not (content_words(part) - _POINTERS)


# Words that name the type of the value that follows or precedes them ("user bob", "the nginx service").
SLOT_WORDS: dict[str, str] = {
    "user": r"users?|usu[aá]rios?|utilizador(?:es)?|account",
    "group": r"groups?|grupos?",
    "service": r"services?|units?|servi[cç]os?|daemon",
    "process": r"process(?:es)?|processos?|programs?",
    "package": r"packages?|pacotes?",
    "jail": r"jails?",
    "job": r"cron jobs?|jobs?|cron|tarefas?",
    "container": r"containers?|cont[eê]iner(?:es)?",
}
_NAME = r"[A-Za-z0-9][\w.@+-]*"
_BAD_NAMES = words_set(
    "the a an is are of in on at for to by named called running active this that which what any "
    "all most more many how much some every each o a os as de do da no na em run runs ran use "
    "uses used listen listens listening logged configured installed set has have does do member "
    "members be been can could will would may might should get got was were vers"
)


# sshd_config keywords by the words operators use for them (most specific first).
_SSHD_KEYS: list[tuple[str, str]] = [
    (r"empty passwords?|senhas? vazias?", "PermitEmptyPasswords"),
    (r"keyboard[- ]interactive|\bkbd", "KbdInteractiveAuthentication"),
    (
        r"password auth\w*|password (?:login|logins)|(?:log ?in|logins?) with (?:a )?passwords?|"
        r"autentica\w+ por senha|\bsenhas?\b",
        "PasswordAuthentication",
    ),
    (r"pub ?key|public[- ]key", "PubkeyAuthentication"),
    (r"root (?:login|log in)|log ?in as root|login de root|\broot\b", "PermitRootLogin"),
    (r"max\w* auth\w* tries|auth(?:entication)? (?:tries|attempts)", "MaxAuthTries"),
    (r"max\w* sessions", "MaxSessions"),
    (r"x11", "X11Forwarding"),
    (r"agent forwarding", "AllowAgentForwarding"),
    (r"tcp forwarding|port forwarding", "AllowTcpForwarding"),
    (r"allowed users|allow ?users", "AllowUsers"),
    (r"allowed groups|allow ?groups", "AllowGroups"),
    (r"listen(?:ing)? address|which address", "ListenAddress"),
    (r"client ?alive ?interval|keep ?alive", "ClientAliveInterval"),
    (r"login ?grace", "LoginGraceTime"),
    (r"\bpam\b", "UsePAM"),
    (r"\bbanner\b", "Banner"),
    (r"log ?level", "LogLevel"),
    (r"\bports?\b|\bportas?\b", "Port"),
]

# Capitals that name a protocol or a unit, not what a log line says.
_ACRONYMS = words_set("TCP UDP HTTP HTTPS SSH DNS CPU RAM UID GID PID IPS NFT API URL TLS SSL DHCP NTP")


@dataclass(frozen=True, slots=True)
class Filled:
    """The slot values for one recipe and the question values they consumed."""

    values: dict[str, str]
    consumed: set[int]  # start offsets of the question's values a slot took


def fill_slots(question: str, slots: dict[str, str], defaults: dict[str, str] | None = None) -> Filled | None:
    """Fill each slot (name → type) from ``question``; None when a slot without default finds nothing.

    Types: ``path``, ``number``, ``percent``, ``size`` (in MiB), and the name types of
    :data:`SLOT_WORDS`. Values are shell-quoted when substituted into a command, not here.
    """
    defaults = defaults or {}
    found = extract_values(question)
    out: dict[str, str] = {k: v for k, v in defaults.items() if k not in slots}  # fixed values
    consumed: set[int] = set()
    for slot, kind in slots.items():
        got = _fill_one(question, kind, found, consumed)
        if got is None:
            if slot not in defaults:
                return None
            out[slot] = defaults[slot]
            continue
        out[slot], start = got
        consumed.add(start)
    return Filled(out, consumed)


def _fill_one(question: str, kind: str, found: list[Value], used: set[int]) -> tuple[str, int] | None:
    if kind == "path":
        for v in found:
            if v.kind == "path" and v.start not in used and v.norm != "/":
                return v.norm, v.start
        return None
    if kind in ("number", "percent"):
        for v in found:
            if v.kind in ("number", "percent") and v.start not in used and v.number is not None:
                return f"{v.number:g}", v.start
        return None
    if kind == "port":
        for v in found:
            if v.kind == "number" and v.start not in used and v.number is not None and 0 < v.number < 65536:
                return f"{int(v.number)}", v.start
        return None
    if kind == "host":  # a dotted name that is not a path, an address or a file name in the question
        for v in found:
            if v.kind in ("name", "url") and "." in v.norm and v.start not in used and "/" not in v.norm:
                return v.text.strip("`'\""), v.start
        return None
    if kind == "word":  # what a log line contains: a quoted text, or a level written in capitals
        m = re.search(r"[`'\"]([^`'\"]{2,64})[`'\"]", question)
        if m:
            return m.group(1), m.start(1)
        for m in re.finditer(r"\b[A-Z][A-Z_]{2,15}\b", question):
            if m.group(0) not in _ACRONYMS and m.start() not in used:
                return m.group(0), m.start()
        return None
    if kind == "ip":
        for v in found:
            if v.kind == "ip" and v.start not in used:
                return v.norm, v.start
        return None
    if kind == "sshd_key":  # "password authentication" → PasswordAuthentication
        m = re.search(r"\b[A-Z][a-z]+(?:[A-Z0-9][a-z0-9]*)+\b", question)
        if m and m.start() not in used:
            return m.group(0), m.start()
        for rx, key in _SSHD_KEYS:
            if (m := re.search(rx, question, re.I)) and m.start() not in used:
                return key, m.start()
        return None
    if kind == "size":  # "larger than 10 MB" → 10 (MiB, for find -size +10M)
        for v in found:
            if v.kind == "size" and v.start not in used and v.number is not None:
                return f"{max(1, round(v.number / 2**20))}", v.start
        return None
    words = SLOT_WORDS.get(kind)
    if words is None:
        raise ValueError(f"unknown slot type {kind!r}")
    candidates: list[tuple[str, int]] = []
    patterns = [
        r"[`'\"]([^`'\"\s]{2,64})[`'\"]",
        rf"\b(?:{words})\s+(?:named\s+|called\s+|chamad[oa]\s+)?[`'\"]?({_NAME})",
        rf"(?:\bthe\s+|\bo\s+|\ba\s+)?[`'\"]?({_NAME})[`'\"]?\s+(?:{words})\b",
    ]
    if kind == "package":  # "which version of coreutils is installed?": a package without the word
        patterns.append(rf"\bversions? (?:of|do|da)\s+(?:the\s+|o\s+)?[`'\"]?({_NAME})")
    if kind == "service":  # "why did nginx fail?": what failed is a service without the word
        patterns.append(rf"\b(?:did|does|is|do|has)\s+(?:the\s+)?({_NAME})\s+(?:fail|crash|die|stop)")
    for rx in patterns:
        for m in re.finditer(rx, question, re.I):
            name = m.group(1).rstrip(".,?")
            if name.lower() in _BAD_NAMES or m.start(1) in used:
                continue
            start = next((v.start for v in found if v.start <= m.start(1) < v.end), m.start(1))
            candidates.append((name, start))
    # An identifier (nginx-http-auth, php8.2-fpm) before a plain word ("jail ban").
    shaped = [c for c in candidates if re.search(r"[\d_.@+-]", c[0])]
    return (shaped or candidates or [None])[0]


def unconsumed(question: str, filled: Filled, known: str) -> list[Value]:
    """The question's concrete values (names, paths, IPs, numbers) no slot took and the recipe's own
    words (its examples, ``known``) do not mention: a sign the recipe answers another question."""
    low = known.lower()
    left = []
    for v in extract_values(question):
        if v.start in filled.consumed or any(v.start <= c < v.end for c in filled.consumed):
            continue
        if v.kind == "name" and re.fullmatch(r"[^\W\d_]+", v.text):
            continue  # a plain word next to "user"/"process" may be a verb ("process eats"): not a value
        if v.norm and re.search(rf"(?<![\w.-]){re.escape(v.norm)}(?![\w-])", low):
            continue
        left.append(v)
    return left


def substitute(command: str, values: dict[str, str]) -> str:
    """``command`` with ``{slot}`` replaced by the shell-quoted value."""
    out = command
    for k, v in values.items():
        out = out.replace("{" + k + "}", shlex.quote(v))
    return out
