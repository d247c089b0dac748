"""Is an answer grounded in its session's evidence?

Every concrete value of the answer (:mod:`fazai.answers.values`) must appear in a command's output or
the session's facts — or follow from them by a simple derivation that is recorded: a unit conversion,
a sum or difference, a percentage, the number of lines or list items of an output. Values the
question itself gave are allowed. A bare count must come from output *about* the same thing (a line
that shares a word with the answer or the question, or an output that is only that value), so "2 IPs
banned" is not grounded by "Number of jail: 2". Contradictions (:mod:`fazai.answers.contradictions`)
fail an answer even when its values are all found.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from fazai.answers.contradictions import Contradiction, find_contradictions
from fazai.answers.evidence import Evidence, Source
from fazai.answers.question import missing_answer, wants
from fazai.answers.values import (
    Value,
    content_words,
    duration_seconds,
    extract_values,
    parse_timestamp,
    short_answer_names,
    words_related,
)

# Operators ask in Portuguese about English output: a few domain words map across.
_PT_EN = {
    "bloqueado": "bann block", "bloqueio": "bann block", "banido": "bann", "arquivo": "file",
    "ficheiro": "file", "usuário": "user", "usuario": "user", "utilizador": "user", "processo": "process",
    "porta": "port", "memória": "memory mem", "memoria": "memory mem", "disco": "disk",
    "erro": "error err", "serviço": "service", "servico": "service", "pacote": "package",
    "núcleo": "core cpu", "nucleo": "core cpu", "falha": "fail", "falhado": "fail", "tentativa": "attempt",
    "regra": "rule", "grupo": "group", "linha": "line", "tamanho": "size", "espaço": "space disk",
}  # fmt: skip
_MAX_PAIR_NUMBERS = 120  # numbers considered for sums/differences (pairs grow quadratically)
_MAX_PAIR_SIZES = 40
_DATED = re.compile(r"not ?after|not ?before|expir|valid|since|until|modif|change|birth|creat|last", re.I)


@dataclass(frozen=True, slots=True)
class Grounding:
    """A value of the answer and where it came from."""

    value: Value
    source: str  # the evidence's ref ("action 3 cmd 0", "facts", "question")
    how: str  # "literal", "converted from 24389648 kB", "sum 3 + 2", "lines of output", …

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value.text, "kind": self.value.kind, "source": self.source, "how": self.how}


@dataclass
class Verdict:
    """The grounding verdict of one answer."""

    answer: str
    grounded: list[Grounding] = field(default_factory=list)
    ungrounded: list[Value] = field(default_factory=list)
    unrelated: dict[str, str] = field(default_factory=dict)  # value text -> the line it was seen on
    weak: dict[str, str] = field(default_factory=dict)  # value text -> why its only source proves nothing
    contradictions: list[Contradiction] = field(default_factory=list)
    unanswered: str | None = None  # why the answer does not answer the question, if it does not

    @property
    def ok(self) -> bool:
        return not self.ungrounded and not self.contradictions and self.unanswered is None

    def problems(self) -> list[str]:
        """One line per problem, naming the value (for the operator and the model)."""
        out = []
        for v in self.ungrounded:
            seen = self.unrelated.get(v.text)
            if v.text in self.weak:
                out.append(f"{v.text!r} comes only from {self.weak[v.text]}: check the filter on its input")
            elif seen is not None:
                out.append(f"{v.text!r} appears only in unrelated output ({seen.strip()[:80]!r})")
            else:
                out.append(f"{v.text!r} ({v.kind}) is not in any command output or the facts")
        out.extend(f"{c.claim!r} contradicts the evidence: {c.evidence}" for c in self.contradictions)
        if self.unanswered:
            out.append(f"the answer does not answer the question: {self.unanswered}")
        return out

    def feedback(self) -> str:
        """What the model is told when its answer is sent back."""
        return (
            "ANSWER NOT ACCEPTED: it must use only values from the command outputs above. Problems: "
            + "; ".join(self.problems())
            + ". Run a command that shows the missing value, or answer again with the exact values "
            "from the output (or say what could not be found)."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": "grounded" if self.ok else "ungrounded",
            "grounded": [g.to_dict() for g in self.grounded],
            "ungrounded": [{"value": v.text, "kind": v.kind} for v in self.ungrounded],
            "contradictions": [c.to_dict() for c in self.contradictions],
            "unanswered": self.unanswered,
            "problems": self.problems(),
        }


def ground(answer: str, evidence: Evidence, question: str | None = None) -> Verdict:
    """Check every value of ``answer`` against ``evidence`` (and the ``question``'s own values)."""
    q = evidence.question if question is None else question
    verdict = Verdict(answer)
    sources = evidence.sources
    q_values = extract_values(q)
    q_words = _expand(content_words(q))
    values = extract_values(answer)
    if wants(q) == "name":
        values += short_answer_names(answer, values)
    given: set[int] = set()
    for v in values:
        g = _given_by_question(v, q, q_values)
        if g is not None:
            given.add(v.start)
        else:
            clause = _expand(content_words(_clause(answer, v))) | q_words
            g = _find(v, sources, clause, verdict)
        if g is None:
            verdict.ungrounded.append(v)
        else:
            verdict.grounded.append(g)
    _counts_of_listed(answer, verdict)
    verdict.contradictions = find_contradictions(answer, sources)
    if q.strip() and wants(q) != "any":  # a question (a goal to change something is judged by its values)
        if (why := missing_answer(q, answer, values, given)) is not None:
            verdict.unanswered = why
        elif not any(g.source != "question" for g in verdict.grounded) and not any(
            _about(s, q_words) for s in sources
        ):
            verdict.unanswered = (
                "no command output about the question supports it (empty or unrelated output)"
            )
    return verdict


def _counts_of_listed(answer: str, verdict: Verdict) -> None:
    """A count followed, in its sentence, by exactly that many grounded items ("4 addresses are
    dropped: a, b, c, d") follows from them: it is grounded by counting. Two items at least: "1 largest
    file: x" counts nothing (the small model's filler), and the item itself is judged on its own."""
    items = [
        g.value
        for g in verdict.grounded
        if g.value.kind not in ("number", "percent", "size") and g.source != "question"
    ]
    for v in list(verdict.ungrounded):
        if v.kind != "number" or v.number is None or v.number != int(v.number) or v.number < 2:
            continue
        end = re.search(r"[.!?](?:\s|$)|\n", answer[v.end :])
        stop = v.end + end.start() if end else len(answer)
        listed = [i for i in items if v.end < i.start < stop]
        if len(listed) == int(v.number) and not any(
            u is not v and v.end < u.start < stop for u in verdict.ungrounded
        ):
            verdict.ungrounded.remove(v)
            verdict.unrelated.pop(v.text, None)
            verdict.grounded.append(Grounding(v, "answer", f"counts the {len(listed)} items it lists"))


def _about(s: Source, q_words: set[str]) -> bool:
    """Whether a source is evidence about the question: a command's output, or facts on its topic."""
    if s.ref != "facts":
        return True
    return any(words_related(w, q_words) for w in s.line_words[1:])


def _expand(words: set[str]) -> set[str]:
    out = set(words)
    for w in words:
        out.update(_PT_EN.get(w, "").split())
    return out


def _clause(text: str, v: Value) -> str:
    """The clause around a value (between separators), for what a number is about."""
    seps = re.compile(r"[;()\n]|[.!?](?:\s|$)|,\s")
    start = max((m.end() for m in seps.finditer(text, 0, v.start)), default=0)
    m = seps.search(text, v.end)
    return text[start : m.start() if m else len(text)]


def _given_by_question(v: Value, question: str, q_values: list[Value]) -> Grounding | None:
    low = question.lower()
    if v.kind in ("name", "path", "ip", "url", "email", "version") and v.norm and v.norm in low:
        return Grounding(v, "question", "given in the question")
    for qv in q_values:
        if qv.kind == v.kind and (qv.norm == v.norm or _close(v, qv.number, qv.unit_step or 0)):
            return Grounding(v, "question", "given in the question")
    return None


def _close(v: Value, other: float | None, other_step: float = 0.0) -> bool:
    if v.number is None or other is None:
        return False
    step = v.unit_step or 1.0
    if v.kind == "number":
        return abs(v.number - other) <= step / 2 + 1e-9 if step < 1 else v.number == round(other, 6)
    if v.kind == "percent":
        return abs(v.number - other) <= max(1.0, step)
    if v.kind in ("size", "duration") and (v.number == 0) != (other == 0):
        return False  # "0 days" is not 3 hours rounded: a zero measure must be read as zero
    if v.kind == "size":
        return abs(v.number - other) <= step * 0.5 + 0.03 * max(abs(v.number), abs(other)) + other_step / 2
    if v.kind == "duration":
        drift = 300.0 if other >= 600 else 2.0  # the clock moves between the command and the answer
        # Written to its unit, a duration is rounded ("2 days" for 1.6) or cut ("up 1 day" for 1.9),
        # never off by a whole unit the other way ("1 day" is not 3 hours).
        return -step / 2 - drift <= other - v.number <= step + drift
    return False


def _find(v: Value, sources: list[Source], clause: set[str], verdict: Verdict) -> Grounding | None:
    if v.kind in ("name", "path", "ip", "url", "email", "version", "date", "time"):
        return _find_text(v, sources)
    if v.kind == "number":
        return _find_number(v, sources, clause, verdict)
    return _find_measure(v, sources)


# --- text-like values ------------------------------------------------------------------------------


def _find_text(v: Value, sources: list[Source]) -> Grounding | None:
    needle = v.norm
    variants = {needle, needle.removesuffix(".service"), needle.rstrip("/")}
    for s in sources:
        for n in variants:
            if n and _has_token(s.lower, n):
                return Grounding(v, s.ref, "literal")
    if v.kind in ("name", "path"):  # what the command looked at: `grep X /etc/ssh/sshd_config`
        for s in sources:
            if any(n and _has_token(s.command.lower(), n) for n in variants):
                return Grounding(v, s.ref, "named in the command")
    if v.kind == "path" and "/" in needle.strip("/"):
        # `ls /srv/data` prints names, not paths: the basename in the output, its directory named too.
        head, _, base = needle.rpartition("/")
        for s in sources:
            if base and _has_token(s.lower, base) and any(_has_token(t.lower, head) for t in sources):
                return Grounding(v, s.ref, f"{base} listed in {head}")
        for s in sources:
            if base and _has_token(s.lower, base) and head and head in s.command:
                return Grounding(v, s.ref, f"{base} listed by {s.command[:60]!r}")
    if v.kind == "time":
        return _find_clock(v, sources)
    if v.kind == "date":
        return _find_date(v, sources)
    return None


def _has_token(hay: str, needle: str) -> bool:
    """``needle`` in ``hay`` not glued to other word characters (``nginx`` in ``nginx.service``)."""
    start = 0
    while (i := hay.find(needle, start)) >= 0:
        before = hay[i - 1] if i else " "
        after = hay[i + len(needle)] if i + len(needle) < len(hay) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        start = i + 1
    return False


def _find_clock(v: Value, sources: list[Source]) -> Grounding | None:
    """``02:30`` from a cron line ``30 2 * * *``: both parts as numbers on one line."""
    m = re.match(r"(\d{1,2}):(\d{2})", v.text)
    if not m:
        return None
    h, mi = int(m.group(1)), int(m.group(2))
    pm = re.search(r"p\.?m", v.text, re.I)
    if pm and h < 12:
        h += 12
    for s in sources:
        for ln in s.lines:
            nums = [int(x) for x in re.findall(r"(?<![\d.:])\d{1,2}(?![\d.:])", ln)]
            if h in nums and mi in nums:
                return Grounding(v, s.ref, f"hour {h} and minute {mi} on {ln.strip()[:60]!r}")
            if re.search(rf"(?<!\d)0?{h}:{mi:02d}(?!\d)", ln):
                return Grounding(v, s.ref, "literal")
    return None


def _find_date(v: Value, sources: list[Source]) -> Grounding | None:
    parts = [p.lower() for p in re.findall(r"[A-Za-z]{3}|\d+", v.text)]
    for s in sources:
        for ln in s.lines:
            low = ln.lower()
            if all(re.search(rf"(?<![\d]){re.escape(p.lstrip('0') or '0')}", low) for p in parts):
                return Grounding(v, s.ref, f"parts on {ln.strip()[:60]!r}")
    return None


# --- measures: percentages, sizes, durations ------------------------------------------------------


def _find_measure(v: Value, sources: list[Source]) -> Grounding | None:
    for s in sources:
        for _, ev in s.values:
            if ev.kind == v.kind and _close(v, ev.number, ev.unit_step or 0):
                return Grounding(v, s.ref, "literal" if ev.norm == v.norm else f"converted from {ev.text}")
            if v.kind == "duration" and ev.kind == "time" and _clock_as_duration(v, ev):
                return Grounding(v, s.ref, f"converted from {ev.text} (hours:minutes)")
        for i, ln in enumerate(s.lines):
            nums = [x.number for _, x in _line_values(s, i) if x.kind == "number" and x.number is not None]
            if g := _derive_measure(v, s, ln, nums):
                return g
        if v.kind == "size" and (g := _size_difference(v, s)):
            return g
    if v.kind == "duration":
        return _until_or_since_now(v, sources)
    return None


def _size_difference(v: Value, s: Source) -> Grounding | None:
    """Used = total - available: the difference of two sizes one output gives (MemTotal, MemAvailable)."""
    sizes = [x for _, x in s.values if x.kind == "size" and x.number is not None][:_MAX_PAIR_SIZES]
    for a, b in itertools.permutations(sizes, 2):
        if a.number > b.number and _close(v, a.number - b.number, (a.unit_step or 0) + (b.unit_step or 0)):  # type: ignore[operator]
            return Grounding(v, s.ref, f"difference {a.text} - {b.text}")
    return None


def _until_or_since_now(v: Value, sources: list[Source]) -> Grounding | None:
    """Days until a certificate's ``notAfter`` (or since a date): a date in the output and the clock."""
    now = time.time()
    for s in sources:
        for ln in s.lines:
            # Only a date that says what it is (an expiry, a change time): any log line's date is not.
            when = parse_timestamp(ln) if _DATED.search(ln) else None
            if when is not None and _close(v, abs(when - now)):
                return Grounding(
                    v, s.ref, f"{'until' if when > now else 'since'} {ln.strip()[:60]!r} from now"
                )
    return None


def _clock_as_duration(v: Value, ev: Value) -> bool:
    m = re.match(r"(\d{1,3}):(\d{2})$", ev.text.strip())
    return bool(m) and _close(v, int(m.group(1)) * 3600 + int(m.group(2)) * 60)


def _percent_of_size(v: Value, s: Source, line: str) -> Grounding | None:
    """``/ 23% of 251.0 GiB`` → 58 GiB used (the percentage of a size on the same line)."""
    for seg in line.split(";"):
        vals = extract_values(seg)
        pcts = [x for x in vals if x.kind == "percent" and x.number is not None]
        sizes = [x for x in vals if x.kind == "size" and x.number is not None]
        for p in pcts:
            for z in sizes:
                for share, how in ((p.number / 100, ""), (1 - p.number / 100, "100% - ")):  # type: ignore[operator]
                    if _close(v, z.number * share, (z.unit_step or 0) * share):  # type: ignore[operator]
                        return Grounding(v, s.ref, f"{how}{p.text} of {z.text}")
    return None


def _line_values(s: Source, i: int) -> list[tuple[int, Value]]:
    return [(j, x) for j, x in s.values if j == i]


def _derive_measure(v: Value, s: Source, line: str, nums: list[float]) -> Grounding | None:
    nums = nums[:12]
    if v.kind == "size":
        for n in nums:  # byte counts, or 1K-block columns (df -k, /proc/meminfo, du -k)
            for mult, unit in ((1, "bytes"), (1024, "KiB")):
                if n >= 1 and _close(v, n * mult):
                    return Grounding(v, s.ref, f"converted from {n:g} {unit}")
        return _percent_of_size(v, s, line)
    elif v.kind == "duration":
        for n in nums:
            if n >= 60 and _close(v, n):
                return Grounding(v, s.ref, f"converted from {n:g} seconds")
        if (step := re.search(r"(?<!\S)\*/(\d+)\s+(\S+)", line)) and _close(
            v, int(step.group(1)) * (60 if step.group(2) == "*" else 3600)
        ):  # a cron step: `*/15 *` runs every 15 minutes, `0 */6` every 6 hours
            return Grounding(v, s.ref, f"cron step {step.group(0)!r}")
        d = duration_seconds(line)
        if d and _close(v, d[0]):
            return Grounding(v, s.ref, f"converted from {line.strip()[:40]!r}")
    elif v.kind == "percent":
        for a, b in itertools.permutations([n for n in nums if n > 0], 2):
            for pct, how in (
                (a / b * 100, f"{a:g} / {b:g}"),
                (a / (a + b) * 100, f"{a:g} / ({a:g} + {b:g})"),
            ):
                if pct <= 100 and _close(v, pct):
                    return Grounding(v, s.ref, f"percentage {how}")
    return None


# --- bare numbers: counts and the like --------------------------------------------------------------


def _find_number(v: Value, sources: list[Source], clause: set[str], verdict: Verdict) -> Grounding | None:
    assert v.number is not None
    related: list[tuple[Source, float, str]] = []
    for s in sources:
        if v.number == 0 and _empty_filter_count(s):
            why = f"a count of 0 printed by a filter that matched nothing ({s.command[:60]!r})"
            verdict.weak.setdefault(v.text, why)
            continue
        short = len(s.lines) <= 2 and len(s.values) <= 2  # `wc -l`, `grep -c`, `nproc`: the value itself
        for i, ev in s.values:
            if ev.kind != "number" or ev.number is None:
                continue
            # A line of bare numbers (`uniq -c`, `wc -l`) is about what its command reads.
            about = short or words_related(s.line_words[i] or s.command_words, clause)
            if _close(v, ev.number):
                if about or v.number >= 1000 or (v.unit_step or 1) < 1:
                    return Grounding(v, s.ref, "literal")
                verdict.unrelated.setdefault(v.text, s.lines[i])
            if about:
                related.append((s, ev.number, " ".join(sorted(s.line_words[i]))))
    for s in sources:  # a port of an address: `127.0.0.1:8089`, `*:22`, `[::]:443`
        for _, ev in s.values:
            if ev.kind == "ip" and re.search(rf":{int(v.number)}$", ev.text) and v.number == int(v.number):
                return Grounding(v, s.ref, f"port of {ev.text}")
        if v.number == int(v.number) and re.search(
            rf"(?:\*|\]|\b\d+\.\d+\.\d+\.\d+):{int(v.number)}\b", s.text
        ):
            return Grounding(v, s.ref, "port of an address")
    for s in sources:  # how many lines / items: the output of a listing command
        if g := _count(v, s, clause):
            return g
    return _sum_or_difference(v, related, verdict)


_COUNTING_FILTER = re.compile(r"\bgrep\b[^|]*\|\s*wc\s+-l\b|\bgrep\s+(?:-\w*c\w*|--count)\b|\bawk\b.*\bc\+\+")


def _empty_filter_count(s: Source) -> bool:
    """``… | grep X | wc -l`` printing 0 says the filter matched nothing, which is as likely a wrong
    filter as a true zero (``dpkg -l | grep '^security'``): it is no evidence for a zero count."""
    return bool(_COUNTING_FILTER.search(s.command)) and [ln.strip() for ln in s.lines if ln.strip()] == ["0"]


def _count(v: Value, s: Source, clause: set[str]) -> Grounding | None:
    for skip, what in ((0, "lines of output"), (1, "lines of output after its header")):
        rows = s.lines[skip:]
        if v.number != len(rows) or not rows or (skip and any(ch.isdigit() for ch in s.lines[0])):
            continue
        if all(re.fullmatch(r"[\d\s.,:]+", r) for r in rows):
            continue  # `grep -c` printed a count: its line count is not the answer
        # A listing about the thing counted: most lines mention it, or a bare list of names
        # (`ls`, `pgrep -l`) from a command about it.
        words = s.line_words[skip:]
        about = sum(words_related(w, clause) for w in words) * 2 >= len(rows)
        bare = all(len(r.split()) <= 2 for r in rows) and words_related(s.command_words, clause)
        if about or bare:
            return Grounding(v, s.ref, f"{len(rows)} {what}")
    if v.number == int(v.number) and v.number >= 2:  # "postfix logged 4 errors": lines that name it
        for w in sorted(clause):
            if sum(w in words for words in s.line_words) == v.number:
                return Grounding(v, s.ref, f"{int(v.number)} lines mention {w!r}")
    for ln in s.lines:  # "Jail list: sshd, asterisk" → 2
        m = re.search(r":\s*(\S+(?:,\s*\S+)+)\s*$", ln)
        if (
            m
            and v.number == len(m.group(1).split(","))
            and words_related(content_words(ln[: m.start()]), clause)
        ):
            return Grounding(v, s.ref, f"{int(v.number)} items listed on {ln.strip()[:60]!r}")
        m = re.search(r":\s*(\S+(?:\s+\S+)+)\s*$", ln)
        if (
            m
            and v.number == len(m.group(1).split())
            and words_related(content_words(ln[: m.start()]), clause)
        ):
            return Grounding(v, s.ref, f"{int(v.number)} items listed on {ln.strip()[:60]!r}")
    return None


def _sum_or_difference(
    v: Value, related: list[tuple[Source, float, str]], verdict: Verdict
) -> Grounding | None:
    by_label: dict[str, list[tuple[Source, float]]] = {}
    for s, n, label in related:
        by_label.setdefault(label, []).append((s, n))
    for label, items in by_label.items():  # "Currently banned: 3" + "Currently banned: 2"
        if len(items) > 1 and _close(v, sum(n for _, n in items)):
            parts = " + ".join(f"{n:g}" for _, n in items)
            return Grounding(v, ", ".join(dict.fromkeys(s.ref for s, _ in items)), f"sum {parts} ({label})")
    nums = related[:_MAX_PAIR_NUMBERS]
    for (s1, a, _), (s2, b, _) in itertools.combinations(nums, 2):
        if _close(v, a + b):
            return Grounding(v, f"{s1.ref}, {s2.ref}", f"sum {a:g} + {b:g}")
        if _close(v, abs(a - b)):
            return Grounding(v, f"{s1.ref}, {s2.ref}", f"difference {max(a, b):g} - {min(a, b):g}")
    return None
