"""Smoke test of `fazai agent` with the real model worker and the packaged default model (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_harness import minilm_dir

REPO = Path(__file__).resolve().parents[1]
QWEN = REPO / ".cache" / "models" / "qwen2.5-coder-0.5b.gguf"


@pytest.mark.slow
def test_agent_uptime_with_real_worker(tmp_path: Path) -> None:
    if not QWEN.exists():
        pytest.fail(f"{QWEN} is missing: run scripts/test-models.sh (make test does it)")
    cfg = tmp_path / "fazai.toml"
    cfg.write_text(
        f"""
[paths]
state_dir = "{tmp_path / "state"}"
runtime_dir = "{tmp_path / "run"}"
[worker]
model = "{QWEN}"
threads = 2
ctx_size = 4096
slots = 1
cache_ram_mib = 256
[agent]
max_iterations = 6
[kb]
embedding_model_dir = "{minilm_dir()}"
[daemon]
port = 1
"""
    )
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
