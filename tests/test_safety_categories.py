"""The categorised corpus (tests/safety_corpus/categories/) through SafetyPolicy, with and without --yes:
no dangerous command runs unasked, none under --yes, benign look-alikes stay read-only (≤ 2 % asked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fazai.config import SafetySettings
from fazai.safety import Risk, SafetyPolicy, classify
from fazai.safety.categories import DANGEROUS, load_categories, render, run_categories

CATEGORIES = Path(__file__).parent / "safety_corpus" / "categories"
CASES = load_categories(CATEGORIES)
DANGER = [c for c in CASES if c.label in DANGEROUS]
BENIGN = [c for c in CASES if c.label == "benign"]
BENIGN_BLOCKED_BUDGET = 0.02


def test_corpus_covers_every_category() -> None:
    cats = {c.category for c in CASES}
    assert {"args", "interpreters", "exfiltration", "persistence", "firewall", "accounts"} <= cats
    assert len(DANGER) >= 150 and len(BENIGN) >= 60
    for cat in cats:  # each category has both sides: what must be caught and what must stay free
        assert any(c.category == cat and c.label in DANGEROUS for c in CASES), cat
        assert any(c.category == cat and c.label == "benign" for c in CASES), cat


def test_report_zero_dangerous_allowed_zero_under_yes_and_benign_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stats = run_categories(CATEGORIES)
    with capsys.disabled():
        print("\n" + render(stats, verbose=True))
    allowed = [x for s in stats.values() for x in s.allowed]
    under_yes = [x for s in stats.values() for x in s.yes_approved]
    blocked = [x for s in stats.values() for x in s.benign_blocked]
    assert allowed == []
    assert under_yes == []
    assert len(blocked) <= BENIGN_BLOCKED_BUDGET * sum(s.benign for s in stats.values())


@pytest.mark.parametrize("case", DANGER, ids=[f"{c.category}:{c.command[:50]}" for c in DANGER])
def test_dangerous_at_least_labelled_class_and_never_auto(case) -> None:  # type: ignore[no-untyped-def]
    v = classify(case.command)
    assert v.risk >= Risk(case.label), (case.command, v)
    # Even a site that auto-approves destructive commands does not run these without an operator,
    # except plain destructive ones (that is what auto_approve=destructive means).
    p = SafetyPolicy(SafetySettings(auto_approve=["changes_state", "destructive"]), assume_yes=True)
    d = p.check_command(case.command)
    if case.label != "destructive" or v.needs_operator:
        assert d.verdict != "allow", (case.command, d)


def test_report_format_and_labels_are_checked(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("benign ls\nopaque eval $X\n", encoding="utf-8")
    stats = run_categories(tmp_path)
    assert stats["x"].benign == 1 and stats["x"].dangerous == 1
    assert "x " in render(stats)
    (tmp_path / "x.txt").write_text("bogus ls\n", encoding="utf-8")
    with pytest.raises(ValueError, match="LABEL"):
        load_categories(tmp_path)


def test_before_fix_policy_would_fail_this_report() -> None:
    # The report is not vacuous: a policy that says read_only to everything allows every dangerous case.
    class Everything(SafetyPolicy):
        def check_command(self, command: str):  # type: ignore[no-untyped-def]
            return self._decide(Risk.READ_ONLY, ["pretend"])

    import fazai.safety.categories as cat

    orig = cat.SafetyPolicy
    cat.SafetyPolicy = Everything  # type: ignore[misc]
    try:
        stats = cat.run_categories(CATEGORIES)
    finally:
        cat.SafetyPolicy = orig  # type: ignore[misc]
    assert sum(len(s.allowed) for s in stats.values()) == sum(s.dangerous + s.other for s in stats.values())
