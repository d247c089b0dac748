"""Run the real ``fazai`` CLI against a temporary state directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def config(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "fazai.toml"
    cfg.write_text(f'[paths]\nstate_dir = "{home / "state"}"\nruntime_dir = "{home / "run"}"\n')
    return cfg


def fazai(cfg: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None):
    """(returncode, stdout, stderr) of one CLI call."""
    p = subprocess.run(
        [sys.executable, "-m", "fazai.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,  # generous: a crowded 2-core machine takes >10 s just to import the CLI
        cwd=REPO,
        env={**os.environ, "FAZAI_CONFIG": str(cfg), "COLUMNS": "200", **(env or {})},
    )
    return p.returncode, p.stdout, p.stderr
