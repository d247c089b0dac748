"""Every operation against the simulator, on several versions: diffs, dry-run, idempotency."""

from __future__ import annotations

import pytest

from fazai.opnsense import errors as E
from fazai.opnsense.firewall import BLOCK_ALIAS, BLOCK_RULE
from opnsense_sim.eve import SSH_SCAN_ALERT

SSH_RULE = {
    "action": "block",
    "interface": "wan",
    "direction": "in",
    "ipprotocol": "inet",
    "protocol": "TCP",
    "source_net": "bad_hosts",
    "destination_net": "any",
    "destination_port": "22",
    "log": "1",
    "sequence": "10",
}


def _alias(sim, name):
    return next((a for a in sim.cols["alias"].items.values() if a["name"] == name), None)


async def test_connect_detects_version_and_capabilities(fw):
    f, sim = fw
    caps = await f.client.capabilities()
    assert str(caps.version).startswith(sim.version_text)
    assert caps.savepoint == (sim.version <= (26, 1))
    assert caps.raw_search_rows == (sim.version >= (25, 7))
    assert caps.dnsbl_model == (sim.version >= (26, 1))
    assert caps.multi_delete == (sim.version >= (26, 7))


async def test_alias_ensure_is_idempotent_with_diff(fw):
    f, sim = fw
    r1 = await f.ensure_alias("bad_hosts", "host", ["203.0.113.7", "198.51.100.9"], "test")
    assert r1.changes[0].action == "create" and r1.changed
    assert _alias(sim, "bad_hosts")["content"] == "203.0.113.7\n198.51.100.9"
    # Same set in another order: a no-op with an empty diff.
    r2 = await f.ensure_alias("bad_hosts", "host", ["198.51.100.9", "203.0.113.7"], "test")
    assert not r2.changed and r2.changes[0].diff() == {}
    r3 = await f.ensure_alias("bad_hosts", "host", ["203.0.113.7"], "test")
    ch = r3.changes[0]
    assert ch.action == "update"
    assert ch.diff() == {"content": {"before": "203.0.113.7\n198.51.100.9", "after": "203.0.113.7"}}
    assert _alias(sim, "bad_hosts")["content"] == "203.0.113.7"
    rows = await f.list_aliases()
    assert [r["name"] for r in rows] == ["bad_hosts"]


async def test_dry_run_changes_nothing(fw):
    f, sim = fw
    await f.ensure_alias("bad_hosts", "host", ["203.0.113.7"])
    before = {k: dict(c.items) for k, c in sim.cols.items()}
    saves = len(sim.backups)
    r = await f.ensure_alias("bad_hosts", "host", ["203.0.113.8"], dry_run=True)
    assert r.changes[0].action == "update" and r.changes[0].dry_run
    r = await f.ensure_rule("block ssh", dry_run=True, **SSH_RULE)
    assert r.changes[0].action == "create"
    r = await f.delete_alias("bad_hosts", dry_run=True)
    assert r.changes[0].action == "delete"
    r = await f.block_ip("203.0.113.50", "scan", dry_run=True)
    assert any(c.action == "add" for c in r.changes)
    await f.apply(["alias", "filter"], dry_run=True)
    await f.safe_apply(dry_run=True)
    assert {k: dict(c.items) for k, c in sim.cols.items()} == before
    assert len(sim.backups) == saves and sim.applied == [] and sim.pf_tables == {}


async def test_alias_delete_and_in_use(fw):
    f, sim = fw
    await f.ensure_alias("bad_hosts", "host", ["203.0.113.7"])
    await f.ensure_rule("block ssh", **SSH_RULE)
    with pytest.raises(E.InUse) as ei:
        await f.delete_alias("bad_hosts")
    assert "block ssh" in str(ei.value) and "Remove the references" in str(ei.value)
    await f.delete_rule("block ssh")
    r = await f.delete_alias("bad_hosts")
    assert r.changes[0].action == "delete" and _alias(sim, "bad_hosts") is None
    r = await f.delete_alias("bad_hosts")
    assert not r.changed


async def test_validation_errors_are_listed_field_by_field(fw2):
    f, _ = fw2
    with pytest.raises(E.ValidationFailed) as ei:
        await f.ensure_alias("1bad-name", "host", ["not a host!"])
    err = ei.value
    assert "alias.name" in err.fields and "alias.content" in err.fields
    assert "must start with a letter" in str(err) and 'Entry "not a host!"' in str(err)
    with pytest.raises(E.ValidationFailed) as ei:
        await f.ensure_rule("bad", action="pass", protocol="any", destination_port="22", sequence="0")
    assert set(ei.value.fields) == {"rule.destination_port", "rule.sequence"}


async def test_rules_ensure_toggle_move_delete(fw):
    f, sim = fw
    await f.ensure_alias("bad_hosts", "host", ["203.0.113.7"])
    r = await f.ensure_rule("block ssh", **SSH_RULE)
    assert r.changes[0].action == "create"
    assert not (await f.ensure_rule("block ssh", **SSH_RULE)).changed
    # A LAN rule must be found too (25.7's searchRule hides non-floating rules without `interface`).
    lan = {**SSH_RULE, "interface": "lan,opt1", "action": "pass", "source_net": "any", "sequence": "20"}
    await f.ensure_rule("allow lan ssh", **lan)
    assert not (await f.ensure_rule("allow lan ssh", **{**lan, "interface": "opt1,lan"})).changed
    r = await f.ensure_rule("allow lan ssh", **{**lan, "log": "0"})
    assert r.changes[0].diff() == {"log": {"before": "1", "after": "0"}}
    r = await f.set_rule_enabled("block ssh", False)
    assert r.changes[0].diff() == {"enabled": {"before": "1", "after": "0"}}
    assert not (await f.set_rule_enabled("block ssh", False)).changed
    r = await f.move_rule("allow lan ssh", before="block ssh")
    assert r.changed
    seq = {i["description"]: int(i["sequence"]) for i in sim.cols["rule"].items.values()}
    assert seq["allow lan ssh"] < seq["block ssh"]
    assert not (await f.move_rule("allow lan ssh", before="block ssh")).changed
    assert {r["description"] for r in await f.list_rules()} >= {"block ssh", "allow lan ssh"}
    await f.delete_rule("block ssh")
    assert [i["description"] for i in sim.cols["rule"].items.values()] == ["allow lan ssh"]


async def test_apply_modules(fw2):
    f, sim = fw2
    await f.ensure_alias("bad_hosts", "host", ["203.0.113.7"])
    assert "alias" not in sim.running  # staged until applied
    await f.apply(["alias", "filter", "unbound", "wireguard", "ids", "dnsbl"])
    assert sim.applied == ["alias", "filter", "unbound", "wireguard", "ids_reload", "dnsbl"]
    assert sim.pf_tables["bad_hosts"] == {"203.0.113.7"}


async def test_safe_apply_confirms_and_cancels_rollback(fw):
    f, sim = fw
    await f.ensure_rule("allow web", action="pass", interface="wan", protocol="TCP", destination_port="443")
    checked = []

    async def verify() -> bool:
        checked.append(True)
        return True

    r = await f.safe_apply(verify)
    assert r.data["status"] == "applied" and checked
    assert sim.rollback_timers == {}
    assert [i["description"] for i in sim.running["rule"].values()] == ["allow web"]
    if sim.version <= (26, 1):
        assert "revision" in r.data
        sim.clock.advance(120)
        sim.tick()
        assert [i["description"] for i in sim.cols["rule"].items.values()] == ["allow web"]
    else:
        assert "backup" in r.data and any("no savepoint" in n for n in r.notes)
        assert f.backups.list()


async def test_safe_apply_failed_verify_rolls_back(fw):
    f, sim = fw
    await f.ensure_rule("keep", action="pass", interface="lan", sequence="5")
    await f.safe_apply()

    async def change():
        return await f.ensure_rule("bad change", action="block", interface="lan", sequence="1")

    async def verify() -> bool:
        return False

    r = await f.safe_apply(verify, change=change)
    names = [i["description"] for i in sim.cols["rule"].items.values()]
    if sim.version <= (26, 1):
        assert r.data["status"] == "rolled_back"
        assert names == ["keep"] and sim.rollbacks_done
        assert any("reverted" in n for n in r.notes)
    else:
        assert r.data["status"] == "verify_failed"
        assert any("no automatic rollback" in n for n in r.notes)


@pytest.mark.parametrize("version", ["25.1", "26.1"])
async def test_lockout_lets_the_firewall_roll_back(make_fw, version):
    f, sim = await make_fw(version, timeout=1.0)  # 0.3 s flaked under load
    try:
        await f.connect()
        await f.ensure_rule("keep", action="pass", interface="wan", sequence="5")
        await f.safe_apply()
        # A rule that blocks our own address: after the apply the API stops answering.
        f.client.options.read_retries = 0

        async def change():
            return await f.ensure_rule(
                "oops", action="block", interface="wan", source_net="127.0.0.0/8", sequence="1"
            )

        r = await f.safe_apply(change=change)
        assert r.data["status"] == "rollback_pending"
        assert any("within 60 s" in n for n in r.notes)
        sim.clock.advance(61)  # the rollback timer fires
        assert await f.api_alive()
        assert [i["description"] for i in sim.cols["rule"].items.values()] == ["keep"]
    finally:
        await f.client.aclose()


async def test_block_ip_lifecycle(fw):
    f, sim = fw
    r = await f.block_ip("203.0.113.50", "ssh brute force", ttl_s=3600)
    kinds = {(c.kind, c.action) for c in r.changes}
    assert {("alias", "create"), ("rule", "create"), ("block", "add")} <= kinds
    assert _alias(sim, BLOCK_ALIAS)["type"] == "network"
    rule = next(i for i in sim.running["rule"].values() if i["description"] == BLOCK_RULE)
    assert rule["action"] == "block" and rule["source_net"] == BLOCK_ALIAS
    assert sim.pf_tables[BLOCK_ALIAS] == {"203.0.113.50/32"}
    applied = len(sim.applied)
    # Second block of the same address and a new one: no setup, no reload, runtime add only.
    assert not (await f.block_ip("203.0.113.50", "again", ttl_s=3600)).changed
    r = await f.block_ip("198.51.100.0/24", "scanner subnet")
    assert [c.action for c in r.changes if c.changed] == ["add"]
    assert len(sim.applied) == applied
    assert "198.51.100.0/24" in _alias(sim, BLOCK_ALIAS)["content"]  # persisted by alias_util
    blocks = {b["address"]: b for b in await f.list_blocks()}
    assert blocks["203.0.113.50/32"]["reason"] == "again"
    # Expiry of the temporary block.
    sim.clock.advance(3601)
    r = await f.expire_blocks()
    assert [c.name for c in r.changes] == ["203.0.113.50"]
    assert sim.pf_tables[BLOCK_ALIAS] == {"198.51.100.0/24"}
    r = await f.unblock_ip("198.51.100.0/24")
    assert r.changes[0].action == "remove" and sim.pf_tables[BLOCK_ALIAS] == set()
    assert not (await f.unblock_ip("198.51.100.0/24")).changed


async def test_block_ip_refuses_dangerous_targets(fw2):
    f, sim = fw2
    with pytest.raises(ValueError, match="own API address"):
        await f.block_ip("127.0.0.1", "oops")
    with pytest.raises(ValueError, match="wider than"):
        await f.block_ip("10.0.0.0/4", "too wide")
    with pytest.raises(ValueError, match="not an IP"):
        await f.block_ip("evil.example", "x")
    with pytest.raises(ValueError, match="reason"):
        await f.block_ip("203.0.113.5", " ")
    assert sim.cols["alias"].items == {}


async def test_alias_runtime_add_remove_flush(fw2):
    f, sim = fw2
    await f.ensure_alias("ext_block", "external")
    await f.apply(["alias"])
    assert (await f.alias_add("ext_block", "192.0.2.77")).changed
    assert not (await f.alias_add("ext_block", "192.0.2.77")).changed
    assert await f.alias_table("ext_block") == ["192.0.2.77"]
    assert _alias(sim, "ext_block")["content"] == ""  # external: runtime only
    assert (await f.alias_remove("ext_block", "192.0.2.77")).changed
    await f.alias_add("ext_block", "192.0.2.78")
    r = await f.alias_flush("ext_block")
    assert r.changes[0].diff()["entries"] == {"before": 1, "after": 0}
    with pytest.raises(E.OperationFailed, match="nonexistent alias"):
        await f.alias_add("nope", "192.0.2.1")


async def test_nat_rules(fw2):
    f, sim = fw2
    fields = {"interface": "wan", "source_net": "10.0.0.0/24", "target": "wanip"}
    assert (await f.ensure_nat("snat", "lan out", **fields)).changed
    assert not (await f.ensure_nat("snat", "lan out", **fields)).changed
    assert (
        await f.ensure_nat(
            "one_to_one", "web", interface="wan", external="192.0.2.10", source_net="10.0.0.10"
        )
    ).changed
    assert (await f.delete_nat("snat", "lan out")).changed
    assert sim.cols["snat"].items == {}
    with pytest.raises(E.NotSupported):
        await f.ensure_nat("d_nat", "x")


async def test_ids_operations(fw2):
    f, sim = fw2
    assert (await f.ids_status())["status"] == "running"
    sim.add_eve({"timestamp": "2025-03-01T10:15:02.123456+0000", "event_type": "flow", "src_ip": "1.1.1.1"})
    sim.add_eve(SSH_SCAN_ALERT)
    alerts = await f.query_alerts()
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.signature_id, a.src_ip, a.source, a.severity) == (2001219, "198.51.100.23", "api", None)
    assert await f.query_alerts(phrase="nothing-matches") == []
    r = await f.ids_rule_action(2001219, "drop")
    assert r.changes[0].diff() == {"action": {"before": "alert", "after": "drop"}}
    assert sim.ids_rules[2001219]["action"] == "drop"
    assert not (await f.ids_rule_action(2001219, "drop")).changed
    with pytest.raises(E.OperationFailed, match="not installed"):
        await f.ids_rule_action(1, "drop")
    await f.ids_update_rules()
    await f.ids_reload_rules()
    assert sim.applied[-2:] == ["ids_update", "ids_reload"]
    assert (await f.ensure_ids_policy("drop scans", new_action="drop", action="alert", prio="1")).changed
    assert not (await f.ensure_ids_policy("drop scans", new_action="drop", action="alert", prio="1")).changed


@pytest.mark.parametrize("version", ["25.7", "26.1"])
async def test_unbound_host_override_and_dnsbl(make_fw, version):
    f, sim = await make_fw(version)
    try:
        await f.connect()
        assert (await f.ensure_host_override("nas", "lan.example", "10.0.0.5")).changed
        assert not (await f.ensure_host_override("nas", "lan.example", "10.0.0.5")).changed
        r = await f.ensure_host_override("nas", "lan.example", "10.0.0.6")
        assert r.changes[0].diff() == {"server": {"before": "10.0.0.5", "after": "10.0.0.6"}}
        with pytest.raises(E.ValidationFailed, match=r"host\.server"):
            await f.ensure_host_override("bad", "lan.example", "not-an-ip")
        assert (await f.delete_host_override("nas", "lan.example")).changed
        assert (await f.ensure_dnsbl(["hgz002", "atf"])).changed
        assert not (await f.ensure_dnsbl(["atf", "hgz002"])).changed
        if version == "26.1":
            assert [b["type"] for b in sim.cols["blocklist"].items.values()] == ["atf,hgz002"]
        else:
            assert sim.dnsbl_legacy["type"] == "atf,hgz002" and sim.dnsbl_legacy["enabled"] == "1"
    finally:
        await f.client.aclose()


async def test_wireguard_server_and_peer(fw2):
    f, sim = fw2
    key = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28="
    srv = {"privkey": key, "pubkey": key, "port": "51820", "tunneladdress": "10.9.0.1/24"}
    assert (await f.ensure_wg_server("wg0", **srv)).changed
    assert not (await f.ensure_wg_server("wg0", **srv)).changed
    suuid = next(iter(sim.cols["server"].items))
    peer = {"pubkey": key, "tunneladdress": "10.9.0.2/32", "servers": suuid}
    assert (await f.ensure_wg_peer("laptop", **peer)).changed
    assert not (await f.ensure_wg_peer("laptop", **peer)).changed
    await f.apply(["wireguard"])
    assert sim.applied == ["wireguard"]


async def test_system_reads(fw2):
    f, _ = fw2
    assert (await f.firmware_status())["product"]["product_name"] == "OPNsense"
    assert "memory" in (await f.resources())["resources"]
    assert {i["identifier"] for i in await f.interfaces()} == {"wan", "lan"}
    assert (await f.gateways())[0]["status_translated"] == "Online"
    rows = {s["id"]: s for s in await f.services()}
    assert {"unbound", "suricata", "pf", "webgui", "openssh", "dpinger/WAN_GW"} <= set(rows)
    assert rows["pf"]["locked"] == 1 and rows["wireguard"]["running"] == 0


async def test_backups_keep_time_hash_and_diff(fw2):
    f, sim = fw2
    r1 = await f.backup("first")
    assert r1.changes[0].action == "create" and len(r1.data["sha256"]) == 64
    assert not (await f.backup()).changed  # identical config is not stored twice
    await f.ensure_alias("bad_hosts", "host", ["203.0.113.7"])
    sim.clock.advance(5)
    r2 = await f.backup()
    assert r2.changed and len(f.backups.list()) == 2
    diff = f.backups.diff("previous", "latest")
    assert "+" in diff and "bad_hosts" in diff
    assert f.backups.diff("latest", "latest") == ""
    assert (f.backups.dir / f.backups.get("latest").file).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("version", ["25.7", "26.1"])
async def test_port_forward_where_the_version_has_it(make_fw, version):
    f, sim = await make_fw(version)
    try:
        await f.connect()
        pf = {"destination_port": "8443", "target": "10.0.0.10", "local_port": "443"}
        if version == "25.7":
            with pytest.raises(E.NotSupported, match=r"new in 26\.1"):
                await f.ensure_port_forward("web in", **pf)
            return
        r = await f.ensure_port_forward("web in", **pf)
        assert r.changes[0].action == "create"
        item = next(iter(sim.cols["dnat"].items.values()))
        assert (item["destination.port"], item["target"], item["local-port"]) == ("8443", "10.0.0.10", "443")
        assert not (await f.ensure_port_forward("web in", **pf)).changed
        r = await f.ensure_port_forward("web in", **{**pf, "target": "10.0.0.11"})
        assert r.changes[0].diff() == {"target": {"before": "10.0.0.10", "after": "10.0.0.11"}}
        assert (await f.delete_port_forward("web in")).changed and sim.cols["dnat"].items == {}
    finally:
        await f.client.aclose()
