"""Measures the recipe matcher: which threshold answers the most questions from recipes, none wrongly.

    .venv/bin/python bench/bench_recipes.py [--assets DIR]

On the held-out questions of ``tests/data/recipes/questions.txt`` (recipe id, or ``-`` for questions
no recipe answers), for each similarity threshold: how many questions go to the right recipe, to a
WRONG recipe, and how many no-recipe questions a recipe would take. The threshold to configure
(``[kb] answer_threshold``) is the lowest with zero wrong answers. Also the matcher's latency against
the baseline of one bare embedding (the part every question pays anyway) in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from fazai.agent.direct import DirectAnswers  # noqa: E402
from fazai.knowledge.embeddings import MiniLMEmbedder  # noqa: E402
from fazai.knowledge.recipe_index import RecipeIndex  # noqa: E402
from fazai.knowledge.starter import load_starter  # noqa: E402

QUESTIONS = REPO / "tests" / "data" / "recipes" / "questions.txt"


def load_questions(path: Path = QUESTIONS) -> list[tuple[str | None, str]]:
    """(expected recipe id or None, question) per line."""
    out = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        rid, _, q = line.partition("|")
        rid = rid.strip()
        out.append((None if rid == "-" else f"starter.answer-{rid}", q.strip()))
    return out


def matcher(embedder: object, threshold: float) -> DirectAnswers:
    items = [i for i in load_starter() if i.answer is not None]
    index = RecipeIndex(embedder)  # type: ignore[arg-type]

    async def search(q: str, k: int) -> list:
        return index.score(q, items)[:k]

    return DirectAnswers(search, threshold=threshold)


def evaluate(embedder: object, threshold: float, questions: list[tuple[str | None, str]]) -> dict:
    """Counts of right / wrong / missed / taken-by-mistake at ``threshold``."""
    m = matcher(embedder, threshold)
    right = wrong = missed = taken = 0
    mistakes = []
    for want, q in questions:
        got = [x for x in asyncio.run(m.plan(q)) if x is not None]
        rid = got[0].item_id if got else None
        if want is None:
            if rid is not None:
                taken += 1
                mistakes.append(f"taken by {rid}: {q}")
        elif rid == want:
            right += 1
        elif rid is None:
            missed += 1
        else:
            wrong += 1
            mistakes.append(f"{rid} instead of {want}: {q}")
    return {"threshold": threshold, "right": right, "wrong": wrong, "missed": missed, "taken": taken,
            "mistakes": mistakes}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", type=Path, default=REPO / ".cache" / "assets")
    args = ap.parse_args()
    emb = MiniLMEmbedder.from_assets(args.assets, blas_threads=1)
    questions = load_questions()
    positives = sum(1 for w, _ in questions if w)
    none = len(questions) - positives
    print(f"{len(questions)} held-out questions: {positives} a recipe answers, {none} none")
    print(f"{'threshold':>9} {'right':>6} {'wrong':>6} {'missed':>7} {'taken':>6}")
    best = None
    for t in [x / 100 for x in range(50, 96, 2)]:
        r = evaluate(emb, t, questions)
        print(f"{t:9.2f} {r['right']:6d} {r['wrong']:6d} {r['missed']:7d} {r['taken']:6d}")
        if best is None and r["wrong"] == 0 and r["taken"] == 0:
            best = r
    if best is not None:
        print(f"lowest threshold with no wrong answer: {best['threshold']:.2f} "
              f"({best['right']}/{positives} answered from recipes)")  # fmt: skip
    # Latency: the matcher per question vs one bare embedding of it (baseline, same run).
    m = matcher(emb, 0.7)
    asyncio.run(m.plan("warm up"))
    qs = [q for _, q in questions]
    t0 = time.perf_counter()
    for q in qs:
        emb.embed([q])
    base = (time.perf_counter() - t0) / len(qs)
    times = []
    for q in qs:
        t1 = time.perf_counter()
        asyncio.run(m.plan(q))
        times.append(time.perf_counter() - t1)
    mean = statistics.fmean(times)
    print(f"matcher: mean {mean * 1000:.1f} ms per question; one embedding {base * 1000:.1f} ms; "
          f"ratio {mean / base:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
