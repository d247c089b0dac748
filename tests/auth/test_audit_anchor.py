"""The audit anchor: removing the newest records (which leaves a valid, shorter chain) is found and
named; a fresh install, an upgraded one without an anchor, and a crash between the commit and the
anchor write are not alarms; replicas on one PostgreSQL each vouch for what they saw."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from cli_env import config, fazai
from sqlalchemy import text

from fazai.audit import AuditLog
from fazai.audit.anchor import read_anchor
from fazai.store import Store

pytestmark = pytest.mark.timeout(900)


def _url(home: Path) -> str:
    return f"sqlite+aiosqlite:///{home / 'state' / 'fazai.db'}"


async def _with_log(home: Path, fn):  # type: ignore[no-untyped-def]
    store = await Store.open(_url(home))
    try:
        return await fn(AuditLog(store.engine, home / "state"))
    finally:
        await store.close()


def _run(home: Path, fn):  # type: ignore[no-untyped-def]
    return asyncio.run(_with_log(home, fn))


async def _append(log: AuditLog, n: int, who: str = "user") -> None:
    for i in range(n):
        await log.append(f"{who}{i}", "approval", f"s_1#{i}", "allow", source="10.0.0.1")


def _anchor(home: Path) -> dict:
    return json.loads((home / "state" / "audit.anchor").read_text())


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    config(tmp_path)
    _run(tmp_path, lambda log: _append(log, 6))
    return tmp_path


def _sql(home: Path, stmt: str) -> None:
    with sqlite3.connect(home / "state" / "fazai.db") as db:
        db.execute(stmt)


def test_every_append_moves_the_anchor_and_it_is_private(trail: Path) -> None:
    a = _anchor(trail)
    assert a["seq"] == 6 and len(a["hash"]) == 64 and len(a["mac"]) == 64
    assert (trail / "state" / "audit.anchor").stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(trail / "state" / "fazai.db") as db:
        assert db.execute("SELECT hash FROM audit_records WHERE seq=6").fetchone()[0] == a["hash"]


def test_deleting_the_tail_is_found_and_named(trail: Path) -> None:
    _sql(trail, "DELETE FROM audit_records WHERE seq > 3")
    res = _run(trail, lambda log: log.verify())
    assert not res.ok and res.bad_seq == 4 and res.anchor == 6
    assert "records after #3 are missing (anchor says #6)" in res.problem
    rc, _out, err = fazai(trail / "fazai.toml", "audit", "verify")
    assert rc == 1 and "broken at record 4" in err and "records after #3 are missing" in err
    # The whole trail gone is said so too.
    _sql(trail, "DELETE FROM audit_records")
    res = _run(trail, lambda log: log.verify())
    assert not res.ok and res.bad_seq == 1 and "the trail is empty" in res.problem


def test_new_records_after_a_truncation_do_not_hide_it_until_reset(trail: Path) -> None:
    _sql(trail, "DELETE FROM audit_records WHERE seq > 3")
    # The daemon keeps auditing: records 4.. are appended again, and past the anchored number.
    _run(trail, lambda log: _append(log, 5, "later"))
    assert _anchor(trail)["seq"] == 6  # stays on the record it vouched for
    res = _run(trail, lambda log: log.verify(advance=True))
    assert not res.ok and res.bad_seq == 6 and "removed and replaced" in res.problem
    assert _anchor(trail)["seq"] == 6  # a failed verify moves nothing
    # An admin accepts the loss: that is itself a record, naming the old anchor.
    rc, out, err = fazai(trail / "fazai.toml", "audit", "anchor", "--reset")
    assert rc == 0, err
    assert "now names record 9" in out
    rc, out, _ = fazai(trail / "fazai.toml", "audit", "verify", "--json")
    assert rc == 0 and json.loads(out)["anchor"] == 9
    last = _run(trail, lambda log: log.recent(1))[0]
    assert last.action == "audit.anchor_reset" and last.detail["old_seq"] == 6


def test_fresh_install_has_no_anchor_and_no_alarm(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    rc, out, err = fazai(cfg, "audit", "verify", "--json")
    assert rc == 0, err
    assert json.loads(out) == {
        "ok": True, "records": 0, "bad_seq": None, "problem": None, "anchor": None, "note": None
    }  # fmt: skip
    assert not (tmp_path / "state" / "audit.anchor").exists()
    rc, out, _ = fazai(cfg, "audit", "anchor")
    assert rc == 0 and "no anchor yet" in out


def test_trail_from_before_anchors_is_noted_then_anchored(trail: Path) -> None:
    (trail / "state" / "audit.anchor").unlink()
    res = _run(trail, lambda log: log.verify())
    assert res.ok and res.anchor is None and "cannot be checked" in res.note
    # `fazai audit verify` of an intact trail writes the anchor it lacked.
    rc, out, _ = fazai(trail / "fazai.toml", "audit", "verify", "--json")
    assert rc == 0 and json.loads(out)["anchor"] == 6 and _anchor(trail)["seq"] == 6


def test_crash_between_commit_and_anchor_write_is_not_an_alarm(trail: Path) -> None:
    state = trail / "state"
    before = (state / "audit.anchor").read_bytes()
    _run(trail, lambda log: _append(log, 1, "crash"))
    # What a crash right after the commit leaves: record 7 stored, the anchor still naming 6, and
    # a half-written temporary file beside it.
    (state / "audit.anchor").write_bytes(before)
    (state / ".audit.anchor.99999.tmp").write_text('{"seq": 7, "ha')
    res = _run(trail, lambda log: log.verify())
    assert res.ok and res.count == 7 and res.anchor == 6
    # The next append catches up (so does a verify with advance).
    _run(trail, lambda log: _append(log, 1, "next"))
    assert _anchor(trail)["seq"] == 8
    assert _run(trail, lambda log: log.verify()).ok


def test_edited_anchor_file_is_refused(trail: Path) -> None:
    a = _anchor(trail)
    (trail / "state" / "audit.anchor").write_text(json.dumps({**a, "seq": 3}))
    res = _run(trail, lambda log: log.verify())
    assert not res.ok and "was altered" in res.problem
    # Appends keep working (the record is what matters) and leave the untrusted file as it is.
    _run(trail, lambda log: _append(log, 1, "after"))
    assert _anchor(trail)["seq"] == 3
    rc, _out, err = fazai(trail / "fazai.toml", "audit", "anchor")
    assert rc == 1 and "was altered" in err


def test_concurrent_appends_leave_the_anchor_on_the_newest(tmp_path: Path) -> None:
    config(tmp_path)

    async def go(log: AuditLog) -> None:
        await asyncio.gather(*(log.append(f"u{i}", "login", "x") for i in range(20)))

    _run(tmp_path, go)
    assert _anchor(tmp_path)["seq"] == 20
    assert _run(tmp_path, lambda log: log.verify()).ok


@pytest.mark.postgres
def test_replicas_on_postgresql_each_vouch_for_what_they_saw(tmp_path: Path, pg_url: str) -> None:
    """Two fazaid state dirs (one audit key, copied like daemon.token) on one PostgreSQL chain."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()

    async def go() -> None:
        store = await Store.open(pg_url, migrate=True)
        async with store.engine.begin() as conn:
            await conn.execute(text("DELETE FROM audit_records"))
        a = AuditLog(store.engine, a_dir)
        _ = a.key  # made here, then shared
        shutil.copy2(a_dir / "audit.key", b_dir / "audit.key")
        b = AuditLog(store.engine, b_dir)
        # Both append at once: numbers are taken by retrying on the primary key.
        await asyncio.gather(_append(a, 5, "a"), _append(b, 5, "b"))
        await _append(a, 1, "a-last")
        await _append(b, 2, "b-last")  # records 12 and 13 are only B's to vouch for
        sa = read_anchor(a.anchor_path, a.key)
        sb = read_anchor(b.anchor_path, b.key)
        assert sa is not None and sb is not None and (sa.seq, sb.seq) == (11, 13)
        assert (await a.verify()).ok and (await b.verify()).ok
        # A database editor removes the newest two records.
        async with store.engine.begin() as conn:
            await conn.execute(text("DELETE FROM audit_records WHERE seq > 11"))
        ra = await a.verify()
        assert ra.ok  # A never saw past its own last record (11): from A alone it cannot tell
        rb = await b.verify()
        assert not rb.ok and rb.bad_seq == 12 and "anchor says #13" in rb.problem
        # Checked from A with a copy of B's anchor file (how an operator checks a whole cluster).
        shutil.copy2(b.anchor_path, tmp_path / "b.anchor")
        rab = await a.verify([tmp_path / "b.anchor"])
        assert not rab.ok and "records after #11 are missing" in rab.problem
        await store.close()

    asyncio.run(go())
