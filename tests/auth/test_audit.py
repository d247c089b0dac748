"""The hash-chained audit trail: intact, then edited, removed and reordered records are each found
(and named) by `fazai audit verify`; export is JSON lines."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from cli_env import config, fazai

from fazai.audit import AuditLog
from fazai.store import Store

# CLI processes: each costs an interpreter start (seconds on a crowded machine).
pytestmark = pytest.mark.timeout(900)


async def _fill(home: Path, n: int) -> Path:
    cfg = config(home)
    store = await Store.open(f"sqlite+aiosqlite:///{home / 'state' / 'fazai.db'}")
    log = AuditLog(store.engine, home / "state")
    for i in range(n):
        await log.append(
            f"user{i}",
            "approval",
            f"s_1#{i}",
            "allow" if i % 2 else "deny",
            source="10.0.0.1",
            detail={"i": i},
        )
    assert (await log.verify()).ok
    await store.close()
    return cfg


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "state" / "fazai.db")


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    asyncio.run(_fill(tmp_path, 6))
    return tmp_path


def _verify(home: Path) -> tuple[int, dict]:
    """What `fazai audit verify --json` prints (the CLI itself is checked in test_intact_then_edited)."""

    async def go():  # type: ignore[no-untyped-def]
        store = await Store.open(f"sqlite+aiosqlite:///{home / 'state' / 'fazai.db'}")
        try:
            return await AuditLog(store.engine, home / "state").verify()
        finally:
            await store.close()

    res = asyncio.run(go())
    return (0 if res.ok else 1), {
        "ok": res.ok,
        "records": res.count,
        "bad_seq": res.bad_seq,
        "problem": res.problem,
        "anchor": res.anchor,
        "note": res.note,
    }


def _cli_verify(home: Path) -> tuple[int, dict]:
    rc, out, _err = fazai(home / "fazai.toml", "audit", "verify", "--json")
    return rc, json.loads(out)


def test_intact_then_edited(trail: Path) -> None:
    rc, res = _cli_verify(trail)
    assert rc == 0 and res == {
        "ok": True, "records": 6, "bad_seq": None, "problem": None, "anchor": 6, "note": None
    }  # fmt: skip
    with _db(trail) as db:
        db.execute("UPDATE audit_records SET decision='allow' WHERE seq=3")
    rc, res = _cli_verify(trail)
    assert rc == 1 and res["bad_seq"] == 3 and "edited" in res["problem"]
    rc, _out, err = fazai(trail / "fazai.toml", "audit", "verify")
    assert rc == 1 and "broken at record 3" in err


def test_removed_record(trail: Path) -> None:
    with _db(trail) as db:
        db.execute("DELETE FROM audit_records WHERE seq=4")
    rc, res = _verify(trail)
    assert rc == 1 and res["bad_seq"] == 4 and "missing" in res["problem"]


def test_removed_last_record_then_forged_append_without_key(trail: Path) -> None:
    # Appending a fake record without the key is caught by its hash (the tail tests are in
    # test_audit_anchor.py).
    with _db(trail) as db:
        prev = db.execute("SELECT hash FROM audit_records WHERE seq=6").fetchone()[0]
        db.execute(
            "INSERT INTO audit_records VALUES (7, ?, 'mallory', 'x', 'login', 'm', 'ok', '{}', ?, ?)",
            ("2026-01-01T00:00:00.000Z", prev, "0" * 64),
        )
    rc, res = _verify(trail)
    assert rc == 1 and res["bad_seq"] == 7


def test_reordered_records(trail: Path) -> None:
    with _db(trail) as db:
        rows = {r[0]: r for r in db.execute("SELECT * FROM audit_records WHERE seq IN (2,3)")}
        db.execute("DELETE FROM audit_records WHERE seq IN (2,3)")
        # Swap them: each keeps its content and hashes, under the other's number.
        db.execute("INSERT INTO audit_records VALUES (2,?,?,?,?,?,?,?,?,?)", rows[3][1:])
        db.execute("INSERT INTO audit_records VALUES (3,?,?,?,?,?,?,?,?,?)", rows[2][1:])
    rc, res = _verify(trail)
    assert rc == 1 and res["bad_seq"] == 2


def test_export_and_list(trail: Path) -> None:
    rc, out, err = fazai(trail / "fazai.toml", "audit", "export")
    assert rc == 0 and "6 records exported" in err
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["seq"] for x in lines] == [1, 2, 3, 4, 5, 6]
    assert lines[1]["prev_hash"] == lines[0]["hash"] and lines[2]["decision"] == "deny"
    assert set(lines[0]) == {
        "seq",
        "ts",
        "actor",
        "source",
        "action",
        "target",
        "decision",
        "detail",
        "prev_hash",
        "hash",
    }
    rc, out, _ = fazai(trail / "fazai.toml", "audit", "list", "--json", "-n", "2")
    assert rc == 0 and [x["seq"] for x in json.loads(out)] == [6, 5]


def test_cli_changes_are_audited(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert fazai(cfg, "users", "add", "ann", "--password-stdin", stdin="long enough pw\n")[0] == 0
    assert fazai(cfg, "users", "grant", "ann", "approver", "acme/paris")[0] == 0
    assert fazai(cfg, "users", "revoke", "ann", "acme/paris")[0] == 0
    _rc, out, _ = fazai(cfg, "audit", "list", "--json")
    acts = [(r["action"], r["target"]) for r in reversed(json.loads(out))]
    assert acts == [("user.add", "ann"), ("user.grant", "ann"), ("user.revoke", "ann")]
    assert all(r["actor"].startswith("cli:") for r in json.loads(out))
    assert fazai(cfg, "audit", "verify")[0] == 0
