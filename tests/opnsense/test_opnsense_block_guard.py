"""block_ip never covers the firewall (by resolved host name), our own source address, the
operator's SSH client, the gateways or the never-block list; every block is journalled with its undo."""

from __future__ import annotations

import pytest

from fazai.config import Settings
from fazai.opnsense import guard
from fazai.opnsense.client import ClientOptions, OPNsenseClient
from fazai.opnsense.firewall import BLOCK_ALIAS, Firewall
from opnsense_sim.keys import KEY, SECRET, install_keys


@pytest.fixture
async def by_name(servers, tmp_path):
    """A firewall registered by host name (``localhost``) instead of an address."""
    sim, url = servers["26.1"]
    sim.reset()
    install_keys(sim)
    client = OPNsenseClient(url.replace("127.0.0.1", "localhost"), KEY, SECRET, ClientOptions(timeout_s=5))
    fw = Firewall(client, tmp_path / "fw", clock=sim.clock, never_block=["198.51.100.0/28"])
    await fw.connect()
    yield fw, sim
    await client.aclose()


async def test_hostname_url_is_resolved_for_the_own_address_guard(by_name):
    fw, sim = by_name
    with pytest.raises(ValueError, match=r"own API address \(localhost\) 127\.0\.0\.1"):
        await fw.block_ip("127.0.0.1", "oops", dry_run=True)
    with pytest.raises(ValueError, match="own API address"):
        await fw.block_ip("127.0.0.0/24", "oops")
    assert sim.cols["alias"].items == {}


async def test_gateways_never_block_list_and_ssh_client_are_refused(by_name, monkeypatch):
    fw, sim = by_name
    with pytest.raises(ValueError, match="gateway WAN_GW"):
        await fw.block_ip("192.0.2.254", "gateway")
    with pytest.raises(ValueError, match="never-block list"):
        await fw.block_ip("198.51.100.0/24", "covers a protected /28")
    monkeypatch.setenv("SSH_CONNECTION", "203.0.113.9 50022 10.0.0.5 22")
    with pytest.raises(ValueError, match=r"operator's SSH client address 203\.0\.113\.9"):
        await fw.block_ip("203.0.113.0/28", "would cut the operator off")
    assert sim.cols["alias"].items == {}
    r = await fw.block_ip("203.0.113.77", "a scanner")  # outside every protected net
    assert r.changed and sim.pf_tables[BLOCK_ALIAS] == {"203.0.113.77/32"}


def test_local_source_and_ssh_client_helpers():
    assert guard.local_source("127.0.0.1", 80) == "127.0.0.1"
    assert guard.ssh_client_address({"SSH_CLIENT": "192.0.2.7 4242 22"}) == "192.0.2.7"
    assert guard.ssh_client_address({}) is None


def test_never_block_setting_accepts_a_list_or_a_comma_string():
    assert Settings(opnsense={"never_block": "10.0.0.0/8, 192.0.2.1"}).opnsense.never_block == [
        "10.0.0.0/8",
        "192.0.2.1",
    ]


async def test_blocks_and_table_edits_are_journalled_and_undone(fw2):
    f, sim = fw2
    r = await f.block_ip("203.0.113.50", "ssh scan")
    assert r.data["undo"]["cli"] == "fazai opnsense unblock 203.0.113.50"
    await f.ensure_alias("ext", "network", ["198.51.100.0/24"])
    await f.apply(["alias"])
    await f.alias_add("ext", "192.0.2.128/25")
    await f.alias_flush("ext")
    assert sim.pf_tables["ext"] == set()
    actions = [(i["action"], i["target"]) for i in f.journal.list()]
    assert actions == [("block", "203.0.113.50"), ("alias_add", "ext:192.0.2.128/25"), ("alias_flush", "ext")]
    await f.undo()  # the flush: the entries come back
    assert sim.pf_tables["ext"] == {"198.51.100.0/24", "192.0.2.128/25"}
    await f.undo()  # the add
    assert sim.pf_tables["ext"] == {"198.51.100.0/24"}
    await f.undo()  # the block
    assert sim.pf_tables[BLOCK_ALIAS] == set() and await f.list_blocks() == []
    with pytest.raises(Exception, match="nothing to undo"):
        await f.undo()
