"""`make demo` answers its default goal right: the goal from scripts/demo.sh, run by `fazai agent` on
the real default model, must state the root filesystem's use and the uptime that `df` and
/proc/uptime show when read independently by this test (slow: the real model worker starts)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_harness import write_real_model_config

REPO = Path(__file__).resolve().parents[1]


def demo_goal() -> str:
    m = re.search(r'goal="\$\{GOAL:-(.+?)\}"', (REPO / "scripts" / "demo.sh").read_text())
    assert m, "scripts/demo.sh no longer sets a default goal"
    return m.group(1)


def root_use_percent() -> int:
    out = subprocess.run(["df", "-P", "/"], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[1].split()[4].rstrip("%"))


def uptime_leading() -> tuple[int, str]:
    secs = float(Path("/proc/uptime").read_text().split()[0])
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= size:
            return int(secs // size), unit
    return 0, "minute"


_UNITS = {"day": r"d|days?|dias?", "hour": r"h|hrs?|hours?|horas?", "minute": r"m|mins?|minutes?|minutos?"}


@pytest.mark.slow
def test_demo_goal_is_answered_right(tmp_path: Path) -> None:
    cfg = write_real_model_config(tmp_path)
    try:
        p = subprocess.run(
            [sys.executable, "-m", "fazai.cli.main", "agent", "--json", demo_goal()],
            env={**os.environ, "FAZAI_CONFIG": str(cfg)},
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
        )
    finally:
        subprocess.run(["pkill", "-f", str(tmp_path / "run")], check=False)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    assert lines, p.stderr[-2000:]
    summary = lines[-1]["summary"]
    answer = str(summary.get("answer") or "")
    assert summary["status"] == "success", (summary, p.stderr[-1500:])
    pct = root_use_percent()
    stated = [int(n) for n in re.findall(r"(\d+)\s*%", answer)]
    assert any(abs(n - pct) <= 1 for n in stated), f"df says {pct}% used; the answer: {answer!r}"
    assert not re.search(r"\b(is|está)\s+(full|cheio)\b", answer.lower()) or pct >= 95, answer
    n, unit = uptime_leading()
    spelled = rf"\b({n}|{n + 1})\s*(?:{_UNITS[unit]})\b"
    assert re.search(spelled, answer.lower()), f"/proc/uptime says {n} {unit}(s); the answer: {answer!r}"
