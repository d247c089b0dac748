"""Turn ops-benchmark results into answer/evidence pairs for the grounding tests.

    .venv/bin/python bench/ops/pairs.py RESULTS.json [...] >> tests/data/grounding/pairs.jsonl

Each row of a results file (``run.py --json``) becomes one JSON line: the question, the model's
answer, the session's facts and every command's output (the evidence), the benchmark checker's
verdict (``correct``), and ``label`` — the grounding verdict the module gives today, to be REVIEWED
by a person before the line is committed (the test then holds the module to it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "src"))

from cases import CASES  # noqa: E402

from fazai.answers import Evidence, ground  # noqa: E402


def pairs(path: Path) -> list[dict]:
    """The pairs of one results file (rows whose answer came from the model)."""
    data = json.loads(path.read_text())
    questions = {c.id: c.question for c in CASES}
    out = []
    for model, rows in data.get("rows", {}).items():
        for row in rows:
            res = row["result"]
            if res.get("answer_source") != "model" or res.get("status") not in ("success", "unverified"):
                continue
            events = row.get("events") or []
            evidence = Evidence().feed_all(_Ev(e) for e in events) if events else _from_results(res)
            question = questions.get(row["id"], res.get("question", ""))
            evidence.question = question
            verdict = ground(str(res.get("answer") or ""), evidence)
            out.append({
                "id": f"{model}:{row['id']}:{path.stem}",
                "question": question,
                "answer": res.get("answer") or "",
                "facts": next((s.text for s in evidence.sources if s.ref == "facts"), ""),
                "sources": [
                    {"command": s.command, "output": s.text, "exit_code": s.exit_code}
                    for s in evidence.sources if s.ref != "facts"
                ],
                "correct": bool(row["ok"]),
                "label": "grounded" if verdict.ok else "ungrounded",
                "problems": verdict.problems(),
            })  # fmt: skip
    return out


class _Ev:
    def __init__(self, d: dict):
        self.kind, self.data = d["kind"], d.get("data") or {}


def _from_results(res: dict) -> Evidence:
    """Evidence from a result's per-command outputs (older results files carry no events)."""
    ev = Evidence()
    for i, r in enumerate(res.get("results") or []):
        if r.get("status") == "refused":
            continue
        ev.feed("action", {"id": i + 1, "action": {"action": "shell", "command": r.get("command", "")}})
        ev.feed("exec_log", {"action": i + 1, "stream": "stdout", "text": r.get("output") or ""})
        ev.feed("exec_log", {"action": i + 1, "stream": "stderr", "text": r.get("error") or ""})
        ev.feed("exec_end", {"action": i + 1, "exit_code": r.get("exit_code")})
    return ev


if __name__ == "__main__":
    for p in sys.argv[1:]:
        for pair in pairs(Path(p)):
            print(json.dumps(pair, ensure_ascii=False))
