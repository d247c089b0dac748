"""Claims in an answer that the evidence contradicts, even when every value in it was found.

A few classes operators meet every day, each checked against the same evidence as the values:
- fullness: "the root filesystem is full" while the evidence shows ``/`` at 23 %;
- thresholds: "no filesystem is above 90 %" while one is at 97 %, or "/mnt is above 90 %" at 40 %;
- impossible parts: "79 GiB used out of 23.5 GiB";
- service state: "ssh is not running" while the output says ``active (running)``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from fazai.answers.evidence import Source
from fazai.answers.values import Value, extract_values


@dataclass(frozen=True, slots=True)
class Contradiction:
    """A claim of the answer and the evidence that contradicts it."""

    claim: str
    evidence: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"claim": self.claim, "evidence": self.evidence, "source": self.source}


def find_contradictions(answer: str, sources: list[Source]) -> list[Contradiction]:
    """Every contradiction between ``answer`` and the evidence ``sources``."""
    found: list[Contradiction] = []
    for sentence in _sentences(answer):
        found += _fullness(sentence, sources)
        found += _thresholds(sentence, sources)
        found += _impossible_parts(sentence)
        found += _service_states(sentence, sources)
    return found


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+|\n+", text) if s.strip()]


# --- filesystem usage in the evidence ----------------------------------------------------------------


def mount_usage(sources: list[Source]) -> list[tuple[str, float, str]]:
    """(mount, use %, source ref) for every filesystem whose usage the evidence shows."""
    out: list[tuple[str, float, str]] = []
    for s in sources:
        for line in s.lines:
            for seg in line.split(";"):
                vals = extract_values(seg)
                paths = [v for v in vals if v.kind == "path"]
                pcts = [v for v in vals if v.kind == "percent" and v.number is not None]
                if len(pcts) != 1 or not paths:
                    continue
                # df puts the mount point last; the facts line puts it first ("/ 23% of 251 GiB").
                mount = paths[-1] if paths[-1].start > pcts[0].start else paths[0]
                out.append((mount.norm, float(pcts[0].number or 0), s.ref))
    return out


def _mount_named(sentence: str) -> str | None:
    if re.search(r"\broot\b|\braiz\b", sentence, re.I):
        return "/"
    for v in extract_values(sentence):
        if v.kind == "path":
            return v.norm
    return None


_FULL = re.compile(
    r"\b(?:is|are|looks|appears|seems|está|estão|esta|estao)\s+(?:almost\s+|nearly\s+|completely\s+|"
    r"quase\s+)?(?:full|cheio|cheia|lotado)\b|\bout of (?:disk )?space\b|\bno space left\b|"
    r"\brunning out of (?:disk )?space\b|\bsem espaço\b|\bat (?:full )?capacity\b",
    re.I,
)


def _fullness(sentence: str, sources: list[Source]) -> list[Contradiction]:
    m = _FULL.search(sentence)
    if not m or re.search(r"\d\s?%\s*(?:full|cheio)", sentence, re.I):
        return []  # "23% full" states a number, not a claim of fullness
    if re.search(r"\b(?:not|isn't|aren't|não|nao)\b[^.]{0,20}$", sentence[: m.start()], re.I):
        return []
    almost = bool(re.search(r"almost|nearly|running out|quase", m.group(0), re.I))
    need = 80.0 if almost else 95.0
    usage = mount_usage(sources)
    mount = _mount_named(sentence)
    rows = [u for u in usage if mount is None or u[0] == mount]
    if not rows:
        return []
    top = max(rows, key=lambda u: u[1])
    if top[1] >= need:
        return []
    where = top[0] if mount is not None else "the fullest filesystem, " + top[0] + ","
    return [Contradiction(m.group(0), f"{where} is at {top[1]:g}%", top[2])]


_ABOVE = r"(?:above|over|exceed\w*|more than|greater than|higher than|acima de|mais de|maior que)"


def _thresholds(sentence: str, sources: list[Source]) -> list[Contradiction]:
    m = re.search(rf"{_ABOVE}\s+(\d+(?:\.\d+)?)\s?%", sentence, re.I)
    if not m:
        return []
    limit = float(m.group(1))
    usage = mount_usage(sources)
    if not usage:
        return []
    before = sentence[: m.start()]
    if re.search(r"\b(?:no|none|not|nenhum|nenhuma|não|nao)\b", before, re.I):
        over = [u for u in usage if u[1] > limit]
        if over:
            mount, pct, ref = max(over, key=lambda u: u[1])
            return [Contradiction(sentence.strip(), f"{mount} is at {pct:g}%", ref)]
        return []
    mount = _mount_named(before)
    if mount is None:
        return []
    rows = [u for u in usage if u[0] == mount]
    if rows and all(u[1] <= limit for u in rows):
        return [Contradiction(sentence.strip(), f"{mount} is at {rows[0][1]:g}%", rows[0][2])]
    return []


_PART_OF = re.compile(r"\s*(?:\w+\s+){0,2}(?:out\s+)?of(?:\s+(?:a|the|total))?\s*")


def _impossible_parts(sentence: str) -> list[Contradiction]:
    vals = [v for v in extract_values(sentence) if v.number is not None and v.kind in ("size", "number")]
    out = []
    for a, b in itertools.pairwise(vals):
        between = sentence[a.end : b.start]
        if a.kind == b.kind and _PART_OF.fullmatch(between) and _bigger(a, b):
            out.append(
                Contradiction(f"{a.text}{between}{b.text}", "a part cannot exceed its whole", "answer")
            )
    return out


def _bigger(a: Value, b: Value) -> bool:
    return a.number is not None and b.number is not None and a.number > b.number * 1.001


_UP = r"running|active|up|started|enabled|ativo|rodando"
_DOWN = r"not running|stopped|inactive|failed|dead|down|disabled|not active|parado|inativo|falhou"
_STATE_OF = re.compile(
    rf"\b([a-z][\w.@-]{{1,40}}?)(?:\.service)?(?:\s+(?:service|unit|daemon|serviço))?\s+(?:is|está|esta)\s+"
    rf"(?:currently\s+)?({_DOWN}|{_UP})\b",
    re.I,
)


def _service_states(sentence: str, sources: list[Source]) -> list[Contradiction]:
    m = _STATE_OF.search(sentence)
    if not m:
        return []
    name, claim = m.group(1).lower(), m.group(2).lower()
    says_up = re.fullmatch(_UP, claim) is not None
    states: list[tuple[bool, str, str]] = []
    for s in sources:
        for line in s.lines:
            low = line.lower()
            mentioned = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", low) is not None
            alone = len(s.lines) <= 2 and re.search(rf"\b{re.escape(name)}\b", s.command.lower())
            if not (mentioned or alone):
                continue
            st = _state_in(low)
            if st is not None:
                states.append((st, line.strip()[:80], s.ref))
    if not states or any(st == says_up for st, _, _ in states):
        return []
    _, line, ref = states[0]
    return [Contradiction(m.group(0), f"the output says {line!r}", ref)]


def _state_in(line: str) -> bool | None:
    if re.search(r"\bactive \(running\)|\bactive\b(?! ?\()|\brunning\b", line) and not re.search(
        r"\binactive\b|not running", line
    ):
        return True
    if re.search(r"\binactive\b|\bfailed\b|\bdead\b|not running|\bstopped\b", line):
        return False
    return None
