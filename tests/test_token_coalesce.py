"""Token coalescing in the session runner: tokens that arrive while the previous event is being
written become one event; the stored text is the text streamed, seqs stay contiguous, and a lone
token with the writer idle is stored at once. Real SessionManager, real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fazai.config import Settings
from fazai.protocol import Event
from fazai.sessions.manager import SessionManager
from fazai.store import Store

PIECES = [f"piece {i} " for i in range(200)]


def _settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {"paths": {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "run")},
         "ai_provider": {"provider": "scripted"}, "kb": {"enabled": False}}
    )  # fmt: skip


def _ev(sid: str, kind: str, **data: Any) -> Event:
    return Event(session=sid, kind=kind, data=data)  # type: ignore[arg-type]


async def _run(tmp_path: Path, loop_fn: Any) -> tuple[SessionManager, Store, list[Event]]:
    settings = _settings(tmp_path)
    store = await Store.open(settings.database_url)
    m = SessionManager(settings, store, loop_fn=loop_fn)
    await m.start(recover=False)
    run = await m.start_run(goal="coalesce")
    assert await m.wait(run.session_id) == "done"
    await m.stop()
    events = await store.events(run.session_id)
    await store.close()
    return m, store, events


async def test_a_burst_of_tokens_is_stored_as_few_events_with_the_same_text(tmp_path: Path) -> None:
    async def burst(goal: str, *, session_id: str, **_: Any) -> AsyncIterator[Event]:
        # No await between the pieces: the writer cannot run, so every piece after the first one
        # arrives while that one is being written.
        for it in (1, 2):
            for p in PIECES:
                yield _ev(session_id, "token", text=p, iteration=it)
            yield _ev(session_id, "observe", text=f"iteration {it}", iteration=it)
        yield _ev(session_id, "done", answer="ok", status="success")

    _, _, events = await _run(tmp_path, burst)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # contiguous, no gaps
    for it in (1, 2):
        toks = [e for e in events if e.kind == "token" and e.data["iteration"] == it]
        assert "".join(e.data["text"] for e in toks) == "".join(PIECES)
        assert len(toks) < 5, [len(e.data["text"]) for e in toks]  # 200 pieces, a handful of events
    kinds = [e.kind for e in events]
    # Order kept: each iteration's tokens come before its observe.
    first_obs = kinds.index("observe")
    assert all(e.data["iteration"] == 1 for e in events[:first_obs] if e.kind == "token")


async def test_a_lone_token_is_stored_at_once(tmp_path: Path) -> None:
    seen: dict[str, int] = {}
    store_box: dict[str, Store] = {}

    async def slow(goal: str, *, session_id: str, **_: Any) -> AsyncIterator[Event]:
        yield _ev(session_id, "token", text="thinking", iteration=1)
        await asyncio.sleep(0.5)  # a slow model: the writer is idle long before the next token
        seen["stored_before_next"] = len(await store_box["s"].events(session_id))
        yield _ev(session_id, "token", text=" more", iteration=1)
        yield _ev(session_id, "done", answer="ok", status="success")

    settings = _settings(tmp_path)
    store = await Store.open(settings.database_url)
    store_box["s"] = store
    m = SessionManager(settings, store, loop_fn=slow)
    await m.start(recover=False)
    run = await m.start_run(goal="lone")
    assert await m.wait(run.session_id) == "done"
    await m.stop()
    events = await store.events(run.session_id)
    await store.close()
    assert seen["stored_before_next"] == 1  # the first token did not wait for the second
    assert [e.data.get("text") for e in events if e.kind == "token"] == ["thinking", " more"]


async def test_tokens_held_at_the_end_of_a_run_are_stored(tmp_path: Path) -> None:
    async def trailing(goal: str, *, session_id: str, **_: Any) -> AsyncIterator[Event]:
        yield _ev(session_id, "done", answer="ok", status="success")
        for p in PIECES[:20]:
            yield _ev(session_id, "token", text=p, iteration=2)

    _, _, events = await _run(tmp_path, trailing)
    toks = [e for e in events if e.kind == "token"]
    assert "".join(e.data["text"] for e in toks) == "".join(PIECES[:20])
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
