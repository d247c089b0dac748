"""ActionStore on a real SQLite store: a batch of results is committed once, redeliveries are not."""

from __future__ import annotations

from fazai.fleet.actions import ActionStore
from fazai.store import Store


async def test_finish_many_commits_a_batch_once(tmp_path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    try:
        actions = ActionStore(store.engine)
        ids = [f"a_{i}" for i in range(1200)]  # more than one 500-id chunk
        spec = {"command": "true"}
        await actions.create({"id": i, "node": "n", "kind": "command.exec", "spec": spec, "session": None}
                             for i in ids)  # fmt: skip
        await actions.mark_running(ids[:10])
        batch = [(i, "done", 0, {"stdout": i}) for i in ids] + [(ids[0], "failed", 1, {"stdout": "dup"})]
        fresh = await actions.finish_many(batch)
        assert fresh == [True] * len(ids) + [False]  # the same action twice: only the first counts
        row = await actions.get(ids[0])
        assert row["state"] == "done" and row["exit_code"] == 0 and row["result"] == {"stdout": ids[0]}
        assert (await actions.get(ids[-1]))["result"] == {"stdout": ids[-1]}
        # A redelivery after the commit changes nothing and says so.
        assert await actions.finish_many([(ids[5], "failed", 2, {"stdout": "late"})]) == [False]
        assert (await actions.get(ids[5]))["state"] == "done"
        assert await actions.nodes_with_open() == set()
    finally:
        await store.close()
