"""The inventory store (real SQLite through the migrations) and node selectors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fazai.store import Store
from fazai.store.inventory import Inventory, InventoryError
from fazai.store.selector import SelectorError, parse_selector


@pytest.fixture
async def inv(tmp_path: Path) -> AsyncIterator[Inventory]:
    store = await Store.open(f"sqlite:///{tmp_path / 'fazai.db'}")
    try:
        yield Inventory(store.engine)
    finally:
        await store.close()


async def _fleet(inv: Inventory) -> None:
    await inv.add_node("web-01", transport="ssh", address="10.0.0.1", site="sp", group="front", tags=["web"])
    await inv.add_node("web-02", transport="ssh", address="10.0.0.2", site="sp", tags=["web", "edge"],
                       labels={"env": "prod"})  # fmt: skip
    await inv.add_node("db-01", transport="agent", site="rj", tags=["db"], labels={"env": "prod"})
    await inv.add_node("here", transport="local", org="acme")


async def test_hierarchy_tags_labels_round_trip(inv: Inventory) -> None:
    await _fleet(inv)
    n = await inv.require("web-01")
    assert (n.org, n.site, n.group, n.transport, n.address, n.tags) == ("default", "sp", "front", "ssh",
                                                                       "10.0.0.1", ["web"])  # fmt: skip
    assert [x.name for x in await inv.list()] == ["db-01", "here", "web-01", "web-02"]
    assert (await inv.require("here")).org == "acme"
    n = await inv.retag("web-01", add=["canary"], remove=["web"], labels={"env": "stage"})
    assert n.tags == ["canary"] and n.labels == {"env": "stage"}
    n = await inv.retag("web-01", labels={"env": None})
    assert n.labels == {}
    assert await inv.remove("web-01") and not await inv.remove("web-01")
    assert await inv.get("web-01") is None


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("site=sp,tag=web", ["web-01", "web-02"]),
        ("site=sp,tag=edge", ["web-02"]),
        ("env=prod", ["db-01", "web-02"]),
        ("name=web-*", ["web-01", "web-02"]),
        ("transport=agent", ["db-01"]),
        ("org=acme", ["here"]),
        ("group=front", ["web-01"]),
        ("site=sp,env=prod,tag=web", ["web-02"]),
        ("site=nowhere", []),
    ],
)
async def test_selectors(inv: Inventory, selector: str, names: list[str]) -> None:
    await _fleet(inv)
    assert [n.name for n in await inv.list(selector)] == names


@pytest.mark.parametrize("bad", ["", "site", "site=", "=sp", "site=sp,,tag=web", "a b=c"])
def test_bad_selectors_say_the_form(bad: str) -> None:
    with pytest.raises(SelectorError, match=r"key=value|valid selector key"):
        parse_selector(bad)


async def test_bad_input_is_refused_with_the_fix(inv: Inventory) -> None:
    await _fleet(inv)
    with pytest.raises(InventoryError, match="already exists"):
        await inv.add_node("web-02", transport="local")
    with pytest.raises(InventoryError, match="not a valid node name"):
        await inv.add_node("-bad name", transport="local")
    with pytest.raises(InventoryError, match="unknown transport"):
        await inv.add_node("x", transport="telnet")
    with pytest.raises(InventoryError, match="needs an address"):
        await inv.add_node("x", transport="ssh")
    with pytest.raises(InventoryError, match="needs a site"):
        await inv.add_node("x", transport="local", group="g")
    with pytest.raises(InventoryError, match="cannot be a label key"):
        await inv.retag("web-02", labels={"site": "x"})
    with pytest.raises(InventoryError, match="not a valid tag"):
        await inv.retag("web-02", add=["a=b"])
    with pytest.raises(InventoryError, match=r"no node 'nope'.*fazai nodes list"):
        await inv.require("nope")


async def test_agent_upsert_and_heartbeat_decide_online(inv: Inventory) -> None:
    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    n = await inv.upsert_node("edge-9", site="sp", version="0.1.0", heartbeat_at=old,
                              facts={"os": {"id": "debian"}})  # fmt: skip
    assert n.transport == "agent" and n.site == "sp" and n.version == "0.1.0"
    assert n.status(90) == "offline" and n.facts == {"os": {"id": "debian"}}
    assert await inv.heartbeat("edge-9", version="0.1.1")
    n = await inv.require("edge-9")
    assert n.status(90) == "online" and n.version == "0.1.1" and n.site == "sp"
    await inv.retag("edge-9", add=["web"])
    n = await inv.upsert_node("edge-9", group="g1")  # a later hello keeps the operator's tags
    assert n.tags == ["web"] and n.group == "g1" and n.site == "sp"
    assert not await inv.heartbeat("ghost")
    assert (await inv.add_node("s1", transport="ssh", address="h")).status(90) == "unknown"


async def test_a_connected_agent_node_is_reachable_before_its_heartbeat_is_stored(inv: Inventory) -> None:
    """Heartbeats are written in batches: the gateway's own word that the node is connected counts."""
    from fazai.config import Settings
    from fazai.targets.base import Target
    from fazai.targets.local import LocalTarget
    from fazai.targets.nodes import NodeTargets, NodeUnavailable

    await inv.upsert_node("edge-1", site="sp")  # enrolled, never heard from
    made: list[str] = []

    def factory(rec) -> Target:  # type: ignore[no-untyped-def]
        made.append(rec.name)
        return LocalTarget(name=rec.name)

    nodes = NodeTargets(Settings(), inv, transports={"agent": factory})
    with pytest.raises(NodeUnavailable, match="offline \\(never heard from"):
        await nodes.target_for("edge-1")
    connected: set[str] = set()

    async def live(name: str) -> bool:
        return name in connected

    nodes.live["agent"] = live
    with pytest.raises(NodeUnavailable, match="offline"):
        await nodes.target_for("edge-1")
    connected.add("edge-1")
    rec, _ = await nodes.target_for("edge-1")
    assert rec.name == "edge-1" and made == ["edge-1"]
