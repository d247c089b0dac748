"""The built-in agent tool definitions: schemas, risk classes, dry-run and diffs."""

from __future__ import annotations

import pytest

from fazai.opnsense.tools import TOOLS, ToolContext, ToolInputError, check_args, get_tool


def test_every_tool_is_well_formed():
    names = [t.name for t in TOOLS]
    assert len(names) == len(set(names))
    assert {
        "opnsense.block_ip",
        "opnsense.unblock_ip",
        "opnsense.ensure_rule",
        "opnsense.ensure_alias",
        "opnsense.apply",
    } <= set(names)
    for t in TOOLS:
        assert t.name.startswith("opnsense.") and t.description
        assert t.risk in ("read_only", "changes_state", "destructive")
        assert t.inputs["type"] == "object" and set(t.inputs["required"]) <= set(t.inputs["properties"])
        changes = t.risk != "read_only"
        assert ("dry_run" in t.inputs["properties"]) == changes, t.name
    assert get_tool("opnsense.delete_rule").risk == "destructive"
    assert get_tool("opnsense.query_alerts").risk == "read_only"
    with pytest.raises(KeyError, match="known"):
        get_tool("opnsense.nope")


def test_argument_checking():
    schema = get_tool("opnsense.block_ip").inputs
    check_args(schema, {"ip": "203.0.113.7", "reason": "scan", "ttl_s": 60})
    with pytest.raises(ToolInputError, match="missing argument"):
        check_args(schema, {"ip": "203.0.113.7"})
    with pytest.raises(ToolInputError, match="unknown argument"):
        check_args(schema, {"ip": "1.2.3.4", "reason": "x", "bogus": 1})
    with pytest.raises(ToolInputError, match="must be number"):
        check_args(schema, {"ip": "1.2.3.4", "reason": "x", "ttl_s": "1h"})
    with pytest.raises(ToolInputError, match="one of"):
        check_args(get_tool("opnsense.ensure_rule").inputs, {"description": "d", "action": "allow"})


async def test_tools_dry_run_then_run(fw2):
    f, sim = fw2

    async def get_firewall(name):
        assert name in (None, "fw1")
        return f

    ctx = ToolContext(get_firewall=get_firewall)
    block = get_tool("opnsense.block_ip")
    planned = await block.run(
        {"ip": "198.51.100.0/24", "reason": "ET SCAN from this /24", "dry_run": True}, ctx
    )
    assert planned["dry_run"] and planned["changed"]
    assert {c["kind"] for c in planned["changes"]} >= {"alias", "rule", "block"}
    assert sim.cols["alias"].items == {} and sim.pf_tables == {}
    done = await block.run(
        {"ip": "198.51.100.0/24", "reason": "ET SCAN from this /24", "firewall": "fw1"}, ctx
    )
    assert not done["dry_run"] and sim.pf_tables["fazai_block"] == {"198.51.100.0/24"}
    listed = await get_tool("opnsense.list_blocks").run({}, ctx)
    assert listed["blocks"][0]["reason"] == "ET SCAN from this /24"
    # A session-wide dry run wins over the arguments.
    r = await get_tool("opnsense.unblock_ip").run(
        {"ip": "198.51.100.0/24"}, ToolContext(get_firewall, dry_run=True)
    )
    assert r["dry_run"] and sim.pf_tables["fazai_block"] == {"198.51.100.0/24"}
    rule = {
        "description": "allow https",
        "action": "pass",
        "interface": "wan",
        "protocol": "TCP",
        "destination_port": "443",
        "log": True,
    }
    r = await get_tool("opnsense.ensure_rule").run({**rule, "apply": True}, ctx)
    assert r["data"]["status"] == "applied" and r["changes"][0]["diff"]["log"] == {
        "before": None,
        "after": "1",
    }
    r = await get_tool("opnsense.ensure_rule").run(rule, ctx)
    assert r["changed"] is False and r["changes"][0]["diff"] == {}
    assert (await get_tool("opnsense.status").run({}, ctx))["capabilities"]["version"].startswith(
        sim.version_text
    )
    r = await get_tool("opnsense.apply").run({"modules": ["alias", "filter", "unbound"]}, ctx)
    assert r["data"]["status"] == "applied"
    assert "gateways" in await get_tool("opnsense.system").run({}, ctx)


def test_writes_that_open_traffic_or_go_live_are_never_approved_by_yes():
    """Under --yes, reads run, a guarded block runs, and rule edits, rule disables, applies and
    IDS rule actions still ask (issue 11: an unattended agent must not open the firewall)."""
    from fazai.config import SafetySettings
    from fazai.safety.policy import SafetyPolicy

    policy = SafetyPolicy(SafetySettings(), assume_yes=True)

    def verdict(name: str, args: dict | None = None) -> str:
        tool = get_tool(name)
        why = tool.critical(args or {}) if tool.critical else None
        return policy.check_risk(tool.risk, name, critical=why is not None, why=why).verdict

    # ensure_rule: a staged block rule is routine; allowing traffic, going live or disabling asks.
    assert verdict("opnsense.ensure_rule", {"action": "block"}) == "allow"
    for args in (
        {"action": "pass"},
        {"action": "block", "apply": True},
        {"action": "block", "enabled": False},
    ):
        assert verdict("opnsense.ensure_rule", args) == "ask", args
    for name in (
        "opnsense.set_rule_enabled",
        "opnsense.apply",
        "opnsense.ids_rule_action",
    ):
        assert verdict(name) == "ask", name
    assert verdict("opnsense.block_ip") == "allow"
    reads = [t.name for t in TOOLS if t.risk == "read_only"]
    assert len(reads) >= 13 and all(verdict(n) == "allow" for n in reads)
