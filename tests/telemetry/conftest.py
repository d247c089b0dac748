"""Telemetry fixtures: a real SQLite store (migrated like the daemon's) in a temporary folder."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fazai.store import Store
from opnsense_sim.eve import SSH_SCAN_ALERT


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'fazai.db'}")
    yield s
    await s.close()


def eve(
    src: str = "198.51.100.23", sid: int = 2001219, ts: str | None = None, **alert: Any
) -> dict[str, Any]:
    """An EVE alert record like OPNsense writes (the shared sample) with a few fields changed."""
    rec = copy.deepcopy(SSH_SCAN_ALERT)
    rec["src_ip"] = src
    rec["alert"]["signature_id"] = sid
    rec["alert"].update(alert)
    if ts:
        rec["timestamp"] = ts
    return rec


def eve_line(**kw: Any) -> str:
    return json.dumps(eve(**kw))


from sqlalchemy import text  # noqa: E402

# pg_url: the throwaway PostgreSQL cluster fixture lives in tests/conftest.py (shared by every package).


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The store on SQLite and, with the postgres marker, on a real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'fazai.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        s = await Store.open(url, migrate=True)
        async with s.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await s.close()
    s = await Store.open(url, migrate=True)  # PostgreSQL is checked, not migrated, by default
    yield s
    await s.close()
