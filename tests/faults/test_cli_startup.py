"""`fazai sessions` keeps ids whole at 80 columns; per-command registration imports only what it needs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from daemon_harness import REPO, action, write_config


def test_sessions_at_80_columns_never_cut_ids(tmp_path: Path) -> None:
    from fazai.store import Store

    cfg = write_config(tmp_path / "h", [action(action="done", answer="x")], port=42150)
    state = tmp_path / "h" / "state"

    async def seed() -> list[str]:
        store = await Store.open(f"sqlite+aiosqlite:///{state / 'fazai.db'}")
        ids = []
        for i in range(3):
            rec = await store.create_session(f"a rather long goal number {i} " + "word " * 40, status="done")
            ids.append(rec.id)
        await store.close()
        return ids

    state.mkdir(parents=True, mode=0o700)
    ids = asyncio.run(seed())
    p = subprocess.run(
        [sys.executable, "-m", "fazai.cli.main", "sessions"],
        env={**os.environ, "FAZAI_CONFIG": str(cfg), "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert p.returncode == 0, p.stderr
    for sid in ids:
        assert sid in p.stdout, p.stdout
    assert all(len(line) <= 80 for line in p.stdout.splitlines())


def test_version_and_sessions_import_only_what_they_need() -> None:
    code = (
        "import sys; sys.argv = ['fazai', '{cmd}'];"
        "from fazai.cli.entry import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('numpy', 'alembic', 'fazai.knowledge.kb', 'fazai.opnsense', 'sqlalchemy', 'rich')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "print('HEAVY', bad)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code.format(cmd="version")], capture_output=True, text=True, timeout=120
    )
    assert "HEAVY []" in p.stdout, p.stdout + p.stderr
    # `--help` lists every command, yet neither the KB (numpy) nor the store (alembic) loads.
    p = subprocess.run(
        [sys.executable, "-c", code.format(cmd="--help")], capture_output=True, text=True, timeout=120
    )
    heavy = p.stdout.split("HEAVY", 1)[1]
    assert "numpy" not in heavy and "alembic" not in heavy and "fazai.knowledge.kb" not in heavy, heavy
