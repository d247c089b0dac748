"""Read-only operator views and the simulator endpoints they use; version-dependent routes."""

from __future__ import annotations

import httpx
import pytest

from fazai.opnsense import errors as E
from fazai.opnsense import reads
from fazai.opnsense.tools import TOOLS, ToolContext, get_tool
from opnsense_sim.keys import KEY, SECRET

READ_TOOLS = [
    "opnsense.firewall_log", "opnsense.states", "opnsense.gateways", "opnsense.dhcp_leases",
    "opnsense.arp", "opnsense.wireguard_status", "opnsense.firmware",
]  # fmt: skip


def test_operator_reads_are_read_only_tools():
    names = {t.name: t.risk for t in TOOLS}
    assert all(names[n] == "read_only" for n in READ_TOOLS)


async def test_operator_reads_against_the_simulator(fw2):
    f, sim = fw2
    sim.log_block("198.51.100.23", 51515, 22)
    sim.log_block("203.0.113.9", 40000, 443)
    log = await reads.firewall_log(f, limit=10, action="block", search="198.51.100.23")
    assert [(r["src"], r["dstport"]) for r in log] == [("198.51.100.23", "22")]
    st = await reads.states(f)
    assert st["total"] >= 1 and all(r["src_addr"] == "127.0.0.1" for r in st["rows"])  # our connection
    leases = await reads.dhcp_leases(f)
    assert leases["sources"][0] == "kea" and leases["leases"][0]["hostname"] == "ws20"
    assert {r["ip"] for r in await reads.arp(f)} == {"10.0.0.20", "192.0.2.254"}
    assert (await reads.arp(f, ipv6=True))[0]["intf_description"] == "LAN"
    await f.ensure_wg_server("wg-office", privkey="cGF0Y2g=", pubkey="c2VydmVy", port="51820")
    wg = await reads.wireguard_status(f)
    assert wg[0]["type"] == "interface" and wg[0]["name"] == "wg-office"
    assert (await reads.firmware(f))["version"] == sim.version_text
    ctx = ToolContext(get_firewall=lambda name: _fw(f))
    out = await get_tool("opnsense.gateways").run({}, ctx)
    assert out["gateways"][0]["name"] == "WAN_GW"


async def _fw(f):
    return f


@pytest.mark.parametrize("version", ["25.1", "26.1", "26.7"])
def test_simulated_routes_follow_core(servers, version):
    sim, url = servers[version]
    sim.reset()
    sim.add_key(KEY, SECRET)
    with httpx.Client(base_url=url + "/api/", auth=(KEY, SECRET)) as c:
        # 26.7 ignores the extra path part of apply/{rev}: it applies and arms no timer.
        assert c.post("firewall/filter/apply/1750000000.00", json={}).json() == {"status": "OK\n\n"}
        assert bool(sim.rollback_timers) == (version != "26.7")
        sim.rollback_timers.clear()
        sp = c.post("firewall/source_nat/savepoint", json={})
        assert sp.status_code == (404 if version == "26.7" else 200)
        assert c.get("firewall/source_nat/get").json()["filter"].keys() >= {"rules", "snatrules", "onetoone"}
        assert "aliases" in c.get("firewall/alias/get").json()["alias"]
        unbound = c.get("unbound/settings/get")
        if version >= "26.1":
            assert "hosts" in unbound.json()["unbound"]
        rules = c.post("ids/settings/searchInstalledRules", json={"current": 1, "rowCount": 10}).json()
        assert {r["sid"] for r in rules["rows"]} == {2001219, 2013028}
        assert c.get("ids/settings/searchInstalledRules").json() == []  # POST only
        assert c.get("diagnostics/interface/getArp").json()[0]["intf_description"] == "LAN"
        # moveRuleBefore with an unknown rule: a UserException, HTTP 500, as core answers.
        if version != "25.1":
            r = c.post(
                "firewall/filter/moveRuleBefore/00000000-0000-4000-8000-000000000000/"
                "00000000-0000-4000-8000-000000000001",
                json={},
            )
            assert r.status_code == 500 and r.json()["errorTitle"] == "Filter"


async def test_rule_validation_is_as_strict_as_core(make_fw):
    f, _ = await make_fw("26.1")
    try:
        await f.connect()
        with pytest.raises(E.ValidationFailed) as ei:
            await f.ensure_rule(
                "bad", action="pass", ipprotocol="inet6", source_net="10.0.0.0/8",
                interface="lan,wan", interfacenot="1", protocol="UDP", statetimeout="30",
            )  # fmt: skip
        assert set(ei.value.fields) == {"rule.source_net", "rule.interfacenot", "rule.statetimeout"}
        assert "address type should match" in str(ei.value)
    finally:
        await f.client.aclose()
