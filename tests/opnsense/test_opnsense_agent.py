"""OPNsense through the agent: an EVE alert → a session → opnsense.block_ip with approval, against the
simulator over real HTTP, with the real loop, safety policy, tool registry and use_tool executor.
Only the model (scripted provider) and the operator (scripted interaction) are doubles."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from pathlib import Path

import pytest

from _agent_doubles import ScriptedInteraction
from fazai.agent.alerts import alert_goal, respond_to_alert, with_alert
from fazai.agent.deps import AgentDeps
from fazai.agent.loop import run_agent
from fazai.agent.prompt import context_block
from fazai.agent.tool_executors import ToolServices, tool_executors
from fazai.config import Settings
from fazai.models.scripted import ScriptedProvider
from fazai.opnsense.alerts import parse_eve_line
from fazai.opnsense.firewall import BLOCK_ALIAS, BLOCK_RULE
from fazai.opnsense.store import FirewallEntry, FirewallStore
from fazai.opnsense.tools import TOOLS
from fazai.protocol import Event
from fazai.safety import SafetyPolicy
from fazai.tools.builtin import make_registry
from opnsense.conftest import registered_firewall
from opnsense_sim.keys import KEY, SECRET

ATTACKER = "45.155.205.233"
EVE = json.dumps(
    {
        "timestamp": "2026-11-23T10:04:05.123456+0000",
        "flow_id": 1234567890,
        "in_iface": "vtnet0",
        "event_type": "alert",
        "src_ip": ATTACKER,
        "src_port": 51544,
        "dest_ip": "192.0.2.10",
        "dest_port": 22,
        "proto": "TCP",
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": 2001219,
            "rev": 20,
            "signature": "ET SCAN Potential SSH Scan",
            "category": "Attempted Information Leak",
            "severity": 2,
        },
    }
)


def act(kind: str, **fields) -> str:
    return json.dumps({"action": kind, **fields})


@pytest.fixture(params=["25.1", "26.7"])
def firewall(request, servers, tmp_path: Path):
    """A simulated firewall registered as ``fw1`` (as `fazai opnsense add` does), and the settings."""
    return registered_firewall(servers, request.param, tmp_path)


def deps_for(settings: Settings, outputs: list[str], policy: SafetyPolicy | None = None) -> AgentDeps:
    services = ToolServices(registry=make_registry(settings), tools=settings.tools)
    return AgentDeps(
        provider=ScriptedProvider(outputs),
        policy=policy or SafetyPolicy(settings.safety),
        executors=tool_executors(services),
        tools=services.catalog,
    )


async def run(
    deps: AgentDeps, operator: ScriptedInteraction, goal: str = "check the firewall"
) -> list[Event]:
    return [
        e
        async for e in run_agent(
            goal, session_id="s_fw", deps=deps, interaction=operator, abort=asyncio.Event()
        )
    ]


def of(events: list[Event], kind: str) -> list[dict]:
    return [e.data for e in events if e.kind == kind]


def assert_no_secrets(events: list[Event], caplog: pytest.LogCaptureFixture) -> None:
    text = json.dumps([e.model_dump(mode="json") for e in events]) + caplog.text
    assert KEY not in text and SECRET not in text


BLOCK_SCRIPT = [
    "A scan from a public address: block it.\n"
    + act("plan", steps=["block the source at the firewall", "report"]),
    act(
        "use_tool",
        name="opnsense.block_ip",
        args={"ip": ATTACKER, "reason": "ET SCAN Potential SSH Scan (sid 2001219)"},
    ),
    act("done", answer=f"{ATTACKER} is blocked in {BLOCK_ALIAS}", status="success"),
]


async def test_alert_to_block_ip_approved(firewall, caplog):
    sim, settings = firewall
    caplog.set_level(logging.DEBUG)
    alert = parse_eve_line(EVE)
    assert alert is not None
    operator = ScriptedInteraction(approve_result=True)
    events = [
        e
        async for e in respond_to_alert(
            alert,
            session_id="s_alert",
            deps=deps_for(settings, BLOCK_SCRIPT),
            interaction=operator,
            abort=asyncio.Event(),
        )
    ]
    kinds = [e.kind for e in events if e.kind != "token"]
    assert "error" not in kinds, of(events, "error")
    # The alert is the session's first event; the goal describes it.
    assert events[0].kind == "alert" and events[0].data["src_ip"] == ATTACKER
    assert events[0].data["signature_id"] == 2001219
    context = of(events, "context")[0]
    goal = context["goal"]
    assert ATTACKER in goal and "ET SCAN Potential SSH Scan" in goal and "opnsense.block_ip" in goal
    # The model is told which tools exist (the goal's context lists them, with their risk).
    offered = {t["name"]: t for t in context["tools"]}
    assert offered["opnsense.block_ip"]["risk"] == "changes_state"
    assert offered["opnsense.block_ip"]["args"][:2] == ["firewall", "ip*"]
    block = context_block(context)
    assert "## Tools for use_tool" in block and "- opnsense.delete_rule [destructive]:" in block

    # Plan → dry-run diff shown with the approval request → approval.
    (approval,) = of(events, "approval_required")
    assert approval["risk"] == "changes_state"
    preview = approval["preview"]
    assert preview["dry_run"] and preview["changed"]
    planned = {(c["kind"], c["action"]) for c in preview["changes"]}
    assert {("alias", "create"), ("rule", "create"), ("block", "add")} <= planned
    assert f"would add block {ATTACKER}" in approval["summary"]
    assert len(operator.approvals) == 1 and operator.approvals[0][2] == "changes_state"
    assert of(events, "reply")[0]["approved"] is True

    # Safe apply → verification, in the observation.
    obs = next(d for d in of(events, "observe") if d["kind"] == "use_tool")
    assert obs["status"] == "ok", obs["text"]
    assert obs["result"]["outcome"].startswith("create alias fazai_block")
    assert "verified: planned the same change again" in obs["result"]["outcome"]
    verification = obs["result"]["verification"]
    assert verification["ok"] and verification["runtime_table"]["present"]
    assert verification["remaining"] == []
    logs = [d["text"] for d in of(events, "exec_log") if d["stream"] == "log"]
    assert any(line.startswith(f"add block {ATTACKER}") for line in logs)
    assert logs[-1].startswith("verified:") and f"{ATTACKER} is in the live {BLOCK_ALIAS}" in logs[-1]
    assert of(events, "done")[0]["status"] == "success"

    # The firewall really changed: the alias (config and runtime table) and its live block rule.
    assert {ipaddress.ip_network(e) for e in sim.pf_tables[BLOCK_ALIAS]} == {ipaddress.ip_network(ATTACKER)}
    assert any(a["name"] == BLOCK_ALIAS for a in sim.cols["alias"].items.values())
    live_rules = sim.running.get("rule", {}).values()
    assert any(r.get("description") == BLOCK_RULE and r.get("source_net") == BLOCK_ALIAS for r in live_rules)
    assert_no_secrets(events, caplog)


async def test_alert_to_block_ip_denied_changes_nothing(firewall, caplog):
    sim, settings = firewall
    caplog.set_level(logging.DEBUG)
    alert = parse_eve_line(EVE)
    assert alert is not None
    script = [
        BLOCK_SCRIPT[1],
        act("done", answer="the operator refused the block", status="blocked"),
    ]
    operator = ScriptedInteraction(approve_result=False)
    events = [
        e
        async for e in respond_to_alert(
            alert,
            session_id="s_alert",
            deps=deps_for(settings, script),
            interaction=operator,
            abort=asyncio.Event(),
        )
    ]
    assert of(events, "approval_required")[0]["preview"]["changed"]
    obs = next(d for d in of(events, "observe") if d["kind"] == "use_tool")
    assert obs["status"] == "denied" and "DENIED" in obs["text"]
    # Neither the dry run nor the refused run touched the firewall.
    assert sim.pf_tables == {} and sim.cols["alias"].items == {} and sim.cols["rule"].items == {}
    assert not [p for m, p in sim.requests if m == "POST" and "alias_util/add" in p]
    assert_no_secrets(events, caplog)


async def test_read_only_tool_runs_without_approval(firewall):
    sim, settings = firewall
    operator = ScriptedInteraction(approve_result=False)
    script = [act("use_tool", name="opnsense.status", args={}), act("done", answer="ok")]
    events = await run(deps_for(settings, script), operator)
    assert operator.approvals == [] and not of(events, "approval_required")
    obs = next(d for d in of(events, "observe") if d["kind"] == "use_tool")
    assert obs["status"] == "ok" and obs["risk"] == "read_only"
    assert obs["result"]["capabilities"]["version"].startswith(sim.version_text)
    assert "verification" not in obs["result"]


async def test_destructive_tool_always_asks(firewall):
    """Even with changes auto-approved and --yes, deleting an alias or editing a rule (which can
    open the firewall) waits for the operator; a staged alias edit does not."""
    sim, settings = firewall
    policy = SafetyPolicy(
        settings.safety.model_copy(update={"auto_approve": ["read_only", "changes_state"]}),
        assume_yes=True,
    )
    rule = {
        "description": "block telnet",
        "action": "block",
        "interface": "wan",
        "protocol": "TCP",
        "destination_port": "23",
    }
    script = [
        act(
            "use_tool",
            name="opnsense.ensure_alias",
            args={"name": "admins", "type": "host", "content": ["10.0.0.9"]},
        ),
        act("use_tool", name="opnsense.ensure_rule", args=rule),
        act("use_tool", name="opnsense.delete_rule", args={"description": "block telnet"}),
        act("done", answer="done"),
    ]
    operator = ScriptedInteraction(approve_result=False)
    events = await run(deps_for(settings, script, policy), operator)
    observed = [d for d in of(events, "observe") if d["kind"] == "use_tool"]
    assert observed[0]["status"] == "ok", observed[0]["text"]  # an alias: routine
    assert observed[1]["status"] == "ok", observed[1]["text"]  # a staged block rule: routine
    assert observed[1]["result"]["verification"]["ok"]
    (approval,) = of(events, "approval_required")  # only the delete asked
    assert approval["risk"] == "destructive" and "would delete rule block telnet" in approval["summary"]
    assert approval["operator_only"] is True
    assert observed[2]["status"] == "denied"
    assert [r["description"] for r in sim.cols["rule"].items.values()] == ["block telnet"]


OPENING_CALLS = [
    # A rule that allows traffic, a rule applied live at once, a disabled rule, enabling/disabling, apply.
    ("opnsense.ensure_rule", {"description": "allow ssh", "action": "pass", "interface": "wan"}),
    ("opnsense.ensure_rule", {"description": "b", "action": "block", "interface": "wan", "apply": True}),
    ("opnsense.ensure_rule", {"description": "c", "action": "block", "interface": "wan", "enabled": False}),
    ("opnsense.set_rule_enabled", {"description": "fazai block", "enabled": False}),
    ("opnsense.apply", {}),
]


@pytest.mark.parametrize(("tool", "args"), OPENING_CALLS, ids=[f"{t}:{sorted(a)}" for t, a in OPENING_CALLS])
async def test_firewall_opening_writes_need_an_operator_even_under_yes(firewall, tool, args):
    """--yes with changes auto-approved: a call that can open the firewall still waits (and is denied)."""
    sim, settings = firewall
    policy = SafetyPolicy(
        settings.safety.model_copy(update={"auto_approve": ["read_only", "changes_state", "destructive"]}),
        assume_yes=True,
    )
    operator = ScriptedInteraction(approve_result=False)
    # set_rule_enabled needs a rule: a staged block rule first (routine, so --yes runs it).
    setup = {"description": "fazai block", "action": "block", "interface": "wan"}
    first = [act("use_tool", name="opnsense.ensure_rule", args=setup)] if tool.endswith("enabled") else []
    script = [*first, act("use_tool", name=tool, args=args), act("done", answer="done")]
    events = await run(deps_for(settings, script, policy), operator)
    approvals = of(events, "approval_required")
    assert len(approvals) == 1 and approvals[0]["operator_only"] is True, approvals
    assert approvals[0]["risk"] == "destructive"
    assert any("security-critical" in r for r in approvals[0]["reasons"])
    obs = [d for d in of(events, "observe") if d["kind"] == "use_tool"][-1]
    assert obs["status"] == "denied"
    rules = list(sim.cols["rule"].items.values())  # nothing was written but the setup rule, enabled
    assert [(r["description"], r.get("enabled", "1")) for r in rules] == (
        [("fazai block", "1")] if first else []
    )


READ_TOOLS = sorted(t.name for t in TOOLS if t.risk == "read_only")


@pytest.mark.parametrize("tool", READ_TOOLS)
async def test_every_read_only_opnsense_query_runs_without_asking(firewall, tool):
    _sim, settings = firewall
    operator = ScriptedInteraction(approve_result=False)
    script = [act("use_tool", name=tool, args={}), act("done", answer="ok")]
    events = await run(deps_for(settings, script), operator)
    assert operator.approvals == [] and not of(events, "approval_required")
    obs = next(d for d in of(events, "observe") if d["kind"] == "use_tool")
    assert obs["status"] != "denied" and obs["risk"] == "read_only"


async def test_failed_dry_run_is_reported_without_asking(firewall):
    """Blocking the firewall's own API address fails in the plan: nothing asked, nothing changed."""
    sim, settings = firewall
    operator = ScriptedInteraction()
    script = [
        act("use_tool", name="opnsense.block_ip", args={"ip": "127.0.0.1", "reason": "oops"}),
        act("done", answer="could not", status="failed"),
    ]
    events = await run(deps_for(settings, script), operator)
    obs = next(d for d in of(events, "observe") if d["kind"] == "use_tool")
    assert obs["status"] == "failed" and "refusing to block" in obs["text"]
    assert operator.approvals == [] and sim.pf_tables == {}


def test_tools_are_offered_only_with_a_firewall(tmp_path: Path, servers):
    settings = Settings(paths={"state_dir": tmp_path / "state"})
    assert not [t for t in make_registry(settings).available() if t.name.startswith("opnsense.")]
    _, url = servers["26.1"]
    FirewallStore(settings.paths.state_dir).add(FirewallEntry(name="fw1", url=url), KEY, SECRET)
    offered = {t.name: t.risk for t in make_registry(settings).available()}
    assert {n: r for n, r in offered.items() if n.startswith("opnsense.")} == {t.name: t.risk for t in TOOLS}
    assert offered["opnsense.block_ip"] == "changes_state"
    assert offered["opnsense.delete_rule"] == "destructive"
    assert offered["opnsense.status"] == "read_only"
    # FazAI dry-runs every change itself before the approval: the model is not offered dry_run.
    block = make_registry(settings).get("opnsense.block_ip")
    assert set(block.spec.inputs["properties"]) == {"firewall", "ip", "reason", "ttl_s", "interface"}


async def test_with_alert_puts_the_alert_first_once():
    alert = parse_eve_line(EVE)
    assert alert is not None

    async def inner(goal, *, session_id, prior_events=(), **kw):
        yield Event(session=session_id, kind="context", data={"goal": goal})

    loop = with_alert(inner, alert)
    fresh = [e async for e in loop(alert_goal(alert), session_id="s1", interaction=None, abort=None)]
    assert [e.kind for e in fresh] == ["alert", "context"] and fresh[0].data["src_ip"] == ATTACKER
    resumed = [e async for e in loop("", session_id="s1", prior_events=fresh, abort=None)]
    assert [e.kind for e in resumed] == ["context"]


def test_alerts_tail_respond_cli(firewall, tmp_path: Path, monkeypatch):
    """`fazai alerts tail --respond`: one stored session per alert worth it; denied without a terminal
    (nothing changes), then done with --yes (the block is live)."""
    from typer.testing import CliRunner

    from fazai.cli.main import _register, app

    _register()
    sim, settings = firewall
    script = tmp_path / "script.json"
    config = tmp_path / "fazai.toml"
    config.write_text(f'[ai_provider]\nprovider = "scripted"\nscript = "{script}"\n')
    monkeypatch.setenv("FAZAI_CONFIG", str(config))
    monkeypatch.setenv("FAZAI_PATHS__STATE_DIR", str(settings.paths.state_dir))
    mild = json.loads(EVE) | {"src_ip": "198.18.0.1"}
    mild["alert"] = mild["alert"] | {"severity": 3}
    eve = tmp_path / "eve.json"
    eve.write_text("\n".join([EVE, json.dumps(mild), EVE, '{"event_type": "flow"}']) + "\n")
    args = ["alerts", "tail", "--file", str(eve), "--from-start", "--no-follow", "--respond", "--json"]
    runner = CliRunner()

    script.write_text(json.dumps(BLOCK_SCRIPT[1:]))
    r = runner.invoke(app, args)
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    kinds = [e["kind"] for e in events if "kind" in e]
    assert kinds[0] == "alert" and kinds.count("alert") == 1, r.stdout  # severity 3 and the repeat skipped
    assert "approval_required" in kinds and sim.pf_tables == {}, r.stderr
    assert "severity 3 > 2" in r.stderr and "was answered" in r.stderr
    # The scripted model still claims the block after the denial: the claim is not in the evidence
    # (the tool never ran), so the run does not end success.
    grounding = next(e["data"] for e in events if e.get("kind") == "grounding")
    assert grounding["outcome"] == "retry" and BLOCK_ALIAS in str(grounding["ungrounded"])
    assert r.exit_code == 1

    script.write_text(json.dumps(BLOCK_SCRIPT[1:]))
    r = runner.invoke(app, [*args, "--yes"])
    assert r.exit_code == 0, (r.stdout, r.stderr)
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    obs = next(e["data"] for e in events if e.get("kind") == "observe" and e["data"]["kind"] == "use_tool")
    assert obs["status"] == "ok" and obs["result"]["verification"]["ok"]
    context = next(e["data"] for e in events if e.get("kind") == "context")
    assert "opnsense.block_ip" in {t["name"] for t in context["tools"]}  # the daemon glue lists them
    assert {ipaddress.ip_network(e) for e in sim.pf_tables[BLOCK_ALIAS]} == {ipaddress.ip_network(ATTACKER)}
    assert KEY not in r.stdout + r.stderr and SECRET not in r.stdout + r.stderr

    r = runner.invoke(app, ["sessions", "--json"])
    rows = json.loads(r.stdout)
    assert len(rows) == 2 and all(ATTACKER in row["goal"] for row in rows)


def test_builtin_names_may_be_namespaced(tmp_path: Path):
    from fazai.tools.registry import BuiltinTool, ToolRegistry
    from fazai.tools.spec import ToolSpecError

    async def run_(args, ctx):
        return {}

    reg = ToolRegistry(tmp_path)
    reg.register_builtin(BuiltinTool("opnsense.status", "d", {"type": "object"}, "read_only", run_))
    assert reg.get("opnsense.status").kind == "builtin"
    for bad in ("opnsense.", ".status", "a.b.c", "Opn.status", "opnsense.block-ip"):
        with pytest.raises(ToolSpecError, match="must match"):
            reg.register_builtin(BuiltinTool(bad, "d", {"type": "object"}, "read_only", run_))


def test_a_running_daemon_offers_a_firewall_added_after_it_started(tmp_path: Path) -> None:
    from fazai.sessions.glue import AgentLoop
    from fazai.sessions.manager import RunOptions

    settings = Settings(paths={"state_dir": tmp_path / "state"}, kb={"enabled": False})
    loop = AgentLoop(settings)
    names = lambda: {t["name"] for t in loop.deps(RunOptions()).tools()}  # noqa: E731
    assert not any(n.startswith("opnsense.") for n in names())
    FirewallStore(settings.paths.state_dir).add(FirewallEntry(name="fw1", url="https://fw1"), KEY, SECRET)
    assert "opnsense.block_ip" in names()
