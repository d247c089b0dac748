"""Smoke test of `fazai agent` with the real model worker and the packaged default model (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_harness import write_real_model_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_agent_uptime_with_real_worker(tmp_path: Path) -> None:
    cfg = write_real_model_config(tmp_path, "[agent]\nmax_iterations = 6\n")
    try:
        p = _run_agent(cfg)
    finally:
        # The CLI auto-started a detached worker for this config: stop it.
        subprocess.run(["pkill", "-f", str(tmp_path / "run")], check=False)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    assert lines, p.stderr[-2000:]
    events, summary = lines[:-1], lines[-1]["summary"]
    story = [(e["kind"], (e["data"].get("said") or e["data"].get("text", ""))[:300]) for e in events
             if e["kind"] in ("action", "observe", "error")]  # fmt: skip
    shells = [e for e in events if e["kind"] == "action" and e["data"]["kind"] == "shell"]
    assert shells, story
    assert any(e["kind"] == "exec_end" for e in events)
    assert any(e["kind"] == "done" for e in events), (summary, story)


def _run_agent(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "fazai.cli.main",
            "agent",
            "--yes",
            "--json",
            "what is the uptime of this machine?",
        ],
        env={**os.environ, "FAZAI_CONFIG": str(cfg)},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
