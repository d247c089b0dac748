"""``python -m fazai.safety --report [--corpus DIR]`` prints the corpus numbers;
``python -m fazai.safety --categories [-v]`` prints, per category of ``DIR/categories``, dangerous commands
run without asking, dangerous commands ``--yes`` would run, and benign look-alikes sent to approval;
``python -m fazai.safety 'COMMAND'`` classifies one command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .categories import render, run_categories
from .classifier import classify
from .report import run_corpus


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fazai.safety", description=__doc__)
    p.add_argument(
        "--report", action="store_true", help="run the hostile/benign corpora and print the numbers"
    )
    p.add_argument(
        "--categories", action="store_true", help="per-category report (allowed / --yes ran / benign blocked)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="with --categories: list every miss")
    p.add_argument("--corpus", type=Path, default=Path("tests/safety_corpus"), help="corpus directory")
    p.add_argument("command", nargs="*", help="a command to classify")
    a = p.parse_args(argv)
    if a.categories:
        cat_dir = a.corpus / "categories"
        if not cat_dir.is_dir():
            print(f"no {cat_dir}: run from the repository root or pass --corpus DIR", file=sys.stderr)
            return 2
        stats = run_categories(cat_dir)
        print(render(stats, verbose=a.verbose))
        bad = sum(len(s.allowed) + len(s.yes_approved) for s in stats.values())
        return 1 if bad else 0
    if a.report:
        if not (a.corpus / "hostile.txt").is_file():
            print(
                f"no corpus at {a.corpus}: run from the repository root or pass --corpus DIR", file=sys.stderr
            )
            return 2
        rep = run_corpus(a.corpus)
        print(rep.render())
        return 1 if rep.forbidden_missed or rep.under_classified else 0
    if not a.command:
        p.print_help()
        return 2
    v = classify(" ".join(a.command))
    print(v.risk.value + (" (needs an operator: never --yes)" if v.needs_operator else ""))
    for r in v.reasons:
        print(f"  - {r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
