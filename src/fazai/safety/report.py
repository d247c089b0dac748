"""Run the hostile and benign corpora through the classifier and summarise the numbers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .classifier import classify
from .model import READ_ONLY, Risk

NEWLINE_MARK = "⏎"


def _lines(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.replace(NEWLINE_MARK, "\n"))
    return out


def load_hostile(path: Path) -> list[tuple[Risk, str]]:
    """``CLASS command`` lines → (minimum risk, command)."""
    items = []
    for line in _lines(path):
        cls, _, cmd = line.partition(" ")
        items.append((Risk(cls), cmd))
    return items


def load_benign(path: Path) -> list[str]:
    return _lines(path)


@dataclass
class CorpusReport:
    hostile_total: int = 0
    forbidden_total: int = 0
    forbidden_missed: list[tuple[str, Risk]] = field(default_factory=list)  # forbidden classified lower
    under_classified: list[tuple[str, Risk, Risk]] = field(default_factory=list)  # (cmd, expected, got)
    benign_total: int = 0
    benign_not_allowed: list[tuple[str, Risk, list[str]]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # time of each classify() call

    @property
    def benign_rate(self) -> float:
        return len(self.benign_not_allowed) / self.benign_total if self.benign_total else 0.0

    def render(self) -> str:
        lines = [
            f"hostile corpus: {self.hostile_total} commands, {self.forbidden_total} expected forbidden",
            f"  forbidden classified below forbidden: {len(self.forbidden_missed)}",
            f"  classified below their minimum class: {len(self.under_classified)}",
        ]
        lines += [f"    - {c!r}: expected ≥ {e.value}, got {g.value}" for c, e, g in self.under_classified]
        lines.append(
            f"benign corpus: {self.benign_total} commands, {len(self.benign_not_allowed)} wrongly sent to "
            f"approval or blocked ({self.benign_rate:.1%})"
        )
        lines += [f"    - {c!r}: {r.value} ({'; '.join(why)[:120]})" for c, r, why in self.benign_not_allowed]
        if self.seconds:
            s = sorted(self.seconds)
            lines.append(
                f"classify() time per command: median {s[len(s) // 2] * 1e3:.2f} ms, "
                f"p99 {s[int(len(s) * 0.99)] * 1e3:.2f} ms, max {s[-1] * 1e3:.2f} ms ({len(s)} commands)"
            )
        return "\n".join(lines)


def run_corpus(corpus_dir: Path) -> CorpusReport:
    """Classify every corpus command and collect the misses."""
    rep = CorpusReport()
    for expected, cmd in load_hostile(corpus_dir / "hostile.txt"):
        t0 = time.perf_counter()
        got = classify(cmd).risk
        rep.seconds.append(time.perf_counter() - t0)
        rep.hostile_total += 1
        if expected == Risk.FORBIDDEN:
            rep.forbidden_total += 1
            if got < Risk.FORBIDDEN:
                rep.forbidden_missed.append((cmd, got))
        if got < expected:
            rep.under_classified.append((cmd, expected, got))
    for cmd in load_benign(corpus_dir / "benign.txt"):
        t0 = time.perf_counter()
        v = classify(cmd)
        rep.seconds.append(time.perf_counter() - t0)
        rep.benign_total += 1
        if v.risk != READ_ONLY:
            rep.benign_not_allowed.append((cmd, v.risk, v.reasons))
    return rep
