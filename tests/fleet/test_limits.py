"""Per-organisation limits: real agents, the inventory's organisations, a cap of running actions."""

from __future__ import annotations

import asyncio

import pytest

from fazai.fleet.limits import LimitError
from fazai.store.inventory import Inventory
from fleet.inproc import fleet_with_agents


async def test_org_cap_queues_then_refuses_and_spares_other_orgs(tmp_path) -> None:
    names = ["acme-1", "acme-2", "beta-1"]
    limits = {"org_limits": {"acme": 1}, "org_max_queued": 2}
    async with fleet_with_agents(tmp_path, names, limits) as (fleet, store, _):
        inv = Inventory(store.engine)
        for n in ("acme-1", "acme-2"):
            await inv.upsert_node(n, transport="agent", org="acme")
        hub = fleet.hub
        go, marker = tmp_path / "go", tmp_path / "marker"
        # acme-1 holds acme's only slot until `go` exists; acme-2's action must wait for it.
        hold = f"while [ ! -e {go} ]; do sleep 0.05; done; echo 1 > {marker}"
        (first,) = await hub.submit(["acme-1"], "command.exec", {"command": hold})
        (second,) = await hub.submit(["acme-2"], "command.exec", {"command": f"cat {marker}"})
        (other,) = await hub.submit(["beta-1"], "command.exec", {"command": "echo beta"})

        # Another organisation (beta-1 is not in the inventory: org default, no cap) is not held up.
        row = await hub.wait(other.id, 60)
        assert row["state"] == "done" and row["result"]["stdout"] == "beta\n"
        why = hub.waiting(second.id)
        assert why is not None and "organisation 'acme'" in why and "org_limits" in why and "is 1" in why
        assert (await hub.actions.get(second.id))["state"] == "queued"
        assert hub.limiter.snapshot()["acme"] == {"running": 1, "cap": 1}

        # Queue full: 1 waiting + 2 new > org_max_queued 2 → refused, saying which org and setting.
        full = r"organisation 'acme' has 1 actions waiting.*org_max_queued = 2"
        with pytest.raises(LimitError, match=full):
            await hub.submit(["acme-1", "acme-2"], "command.exec", {"command": "true"})
        (third,) = await hub.submit(["acme-2"], "command.exec", {"command": "echo third"})
        # beta is not limited by acme's queue.
        (more,) = await hub.submit(["beta-1"], "command.exec", {"command": "echo more"})
        assert (await hub.wait(more.id, 60))["state"] == "done"

        go.touch()
        done = await asyncio.gather(*(hub.wait(a.id, 60) for a in (first, second, third)))
        assert [r["state"] for r in done] == ["done", "done", "done"]
        # acme-2 ran only after acme-1 finished: it read the marker acme-1 wrote at its end.
        assert done[1]["result"]["stdout"] == "1\n" and done[2]["result"]["stdout"] == "third\n"
        assert hub.waiting(second.id) is None and hub.limiter.snapshot() == {}
