"""The classifier against the hostile and benign corpora (tests/safety_corpus/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fazai.safety import Risk, classify
from fazai.safety.report import load_benign, load_hostile, run_corpus

CORPUS = Path(__file__).parent / "safety_corpus"
HOSTILE = load_hostile(CORPUS / "hostile.txt")
BENIGN = load_benign(CORPUS / "benign.txt")
# Benign commands sent to approval or blocked: at most this share. Chosen honestly: the corpus was written
# alongside the rules, so real traffic will do worse; 5 % is the budget the issue accepts.
BENIGN_MISS_BUDGET = 0.05


def test_corpus_sizes() -> None:
    assert len(HOSTILE) >= 150
    assert len(BENIGN) >= 150
    assert sum(1 for r, _ in HOSTILE if r == Risk.FORBIDDEN) >= 100


@pytest.mark.parametrize(("expected", "command"), HOSTILE, ids=[c[:60] for _, c in HOSTILE])
def test_hostile_at_least_expected(expected: Risk, command: str) -> None:
    v = classify(command)
    assert v.risk >= expected, f"{command!r}: expected ≥ {expected.value}, got {v.risk.value} ({v.reasons})"
    assert v.reasons, "every verdict explains itself"


def test_no_forbidden_command_runnable() -> None:
    forbidden = [c for r, c in HOSTILE if r == Risk.FORBIDDEN]
    missed = [(c, classify(c).risk) for c in forbidden if classify(c).risk < Risk.FORBIDDEN]
    assert missed == []


def test_benign_false_positives_reported_and_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    rep = run_corpus(CORPUS)
    with capsys.disabled():
        print(
            f"\n[safety] benign commands sent to approval or blocked: {len(rep.benign_not_allowed)}"
            f"/{rep.benign_total} ({rep.benign_rate:.1%})"
        )
        for cmd, risk, why in rep.benign_not_allowed:
            print(f"[safety]   {risk.value}: {cmd!r} — {'; '.join(why)[:120]}")
    assert not any(r == Risk.FORBIDDEN for _, r, _ in rep.benign_not_allowed), "benign command forbidden"
    assert rep.benign_rate <= BENIGN_MISS_BUDGET
