"""searchRule shows one interface view per request, per core version: FazAI still sees every rule."""

from __future__ import annotations

import httpx
import pytest

from fazai.opnsense.firewall import BLOCK_RULE
from opnsense_sim.keys import KEY, SECRET

ALL_VERSIONS = ["25.1", "25.7", "26.1", "26.1.11", "26.7"]


def _add(c: httpx.Client, description: str, interface: str, **extra: str) -> str:
    body = {"rule": {"description": description, "interface": interface, "action": "pass", **extra}}
    r = c.post("addRule", json=body).json()
    assert r["result"] == "saved", r
    return r["uuid"]


@pytest.mark.parametrize(
    ("version", "default_view"),
    [
        ("25.1", {"wan rule", "lan+opt1 rule", "floating rule"}),  # a model search: every rule
        ("25.7", {"lan+opt1 rule", "floating rule"}),  # no `interface`: floating only
        ("26.1", {"lan+opt1 rule", "floating rule"}),  # the 26.1 release: floating only
        ("26.1.11", {"wan rule", "lan+opt1 rule", "floating rule"}),  # 26.1.1+: every rule
        ("26.7", {"wan rule", "lan+opt1 rule", "floating rule"}),
    ],
)
def test_simulated_search_rule_views_follow_core(servers, version, default_view):
    sim, url = servers[version]
    sim.reset()
    sim.add_key(KEY, SECRET)
    with httpx.Client(base_url=url + "/api/firewall/filter/", auth=(KEY, SECRET)) as c:
        _add(c, "wan rule", "wan")
        _add(c, "lan+opt1 rule", "lan,opt1")
        _add(c, "floating rule", "")

        def view(**params: str) -> set[str]:
            rows = c.post("searchRule", json={"current": 1, "rowCount": -1, **params}).json()["rows"]
            return {r["description"] for r in rows}

        assert view() == default_view
        if version != "25.1":
            assert "wan rule" in view(interface="wan")
            assert view(interface="") == {"lan+opt1 rule", "floating rule"}
            listed = c.get("getInterfaceList").json()
            assert {i["value"] for i in listed["interfaces"]["items"]} >= {"wan", "lan", "opt1"}
        else:
            assert c.get("getInterfaceList").status_code == 404


@pytest.mark.parametrize("version", ALL_VERSIONS)
async def test_rules_on_an_interface_are_seen_whatever_the_version(make_fw, version):
    f, sim = await make_fw(version)
    try:
        await f.connect()
        # Twice the same block: one rule, one entry (before the fix, 25.7 and 26.1 made two rules).
        await f.block_ip("203.0.113.50", "ssh scan")
        assert not (await f.block_ip("203.0.113.50", "ssh scan")).changed
        await f.block_ip("203.0.113.51", "ssh scan")
        rules = [i for i in sim.cols["rule"].items.values() if i["description"] == BLOCK_RULE]
        assert len(rules) == 1 and rules[0]["interface"] == "wan"
        await f.ensure_rule("lan web", action="pass", interface="lan", protocol="TCP", destination_port="443")
        await f.ensure_rule("multi", action="pass", interface="lan,opt1")
        listed = {r["description"] for r in await f.list_rules()}
        assert {BLOCK_RULE, "lan web", "multi"} <= listed
        assert (await f.delete_rule("lan web")).changes[0].action == "delete"
        assert "lan web" not in {i["description"] for i in sim.cols["rule"].items.values()}
        assert (await f.set_rule_enabled("multi", False)).changed
    finally:
        await f.client.aclose()
