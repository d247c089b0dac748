"""Playbook runs against real components: the OPNsense simulator, nftables in network namespaces,
an SMTP sink and an HTTP receiver."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from fazai.opnsense.alerts import parse_eve_record
from fazai.opnsense.client import ClientOptions, OPNsenseClient
from fazai.opnsense.firewall import BLOCK_ALIAS, Firewall
from fazai.playbooks import parse_playbook, run_playbook
from fazai.playbooks.context import alert_context
from fazai.playbooks.env import FirewallPool
from fazai.protocol import Event
from opnsense_sim.eve import SSH_SCAN_ALERT

from .conftest import Approver, free_port, make_env


def alert_ctx(src: str = "198.51.100.23") -> dict[str, Any]:
    rec = copy.deepcopy(SSH_SCAN_ALERT)
    rec["src_ip"] = src
    alert = parse_eve_record(rec)
    assert alert is not None
    return alert_context(alert, alert_id="a_1", source="fw1")


async def run(pb_text: str, ctx: dict[str, Any], env, approver: Approver | None = None) -> list[Event]:
    pb = parse_playbook(pb_text)
    return [
        ev
        async for ev in run_playbook(
            pb, ctx, env, session_id="s_test", interaction=approver or Approver(), abort=asyncio.Event()
        )
    ]


def blocked(sim, ip: str) -> bool:
    """Whether the simulator's live fazai_block table holds ``ip`` (pf shows hosts as /32)."""
    table = sim.pf_tables.get(BLOCK_ALIAS, set())
    return ip in table or f"{ip}/32" in table


def done(events: list[Event]) -> dict[str, Any]:
    assert events[-1].kind == "done", events[-1]
    return events[-1].data


FULL = """
name: ssh-scan
trigger:
  alert: {signature_id: 2001219, severity_max: 2}
steps:
  - id: firewall
    block_ip: {ttl: 1h}
  - id: nodes
    nft_block: {nodes: [web1, web2, web3]}
  - id: hook
    webhook: {url: "HOOK", message: "blocked {alert.src_ip}: {summary}"}
  - id: mail
    email: {to: [secops@example.org], smtp: "SMTP", subject: "blocked {alert.src_ip}"}
"""


async def test_alert_blocks_on_firewall_and_nodes_and_notifies(firewall, namespaces, hook, smtp) -> None:
    fw, sim = firewall
    env = make_env(fw, namespaces)
    text = FULL.replace("HOOK", hook.url).replace("SMTP", smtp.address)
    events = await run(text, alert_ctx(), env)
    assert done(events)["status"] == "success", done(events)
    assert blocked(sim, "198.51.100.23")
    for ns in namespaces:
        assert ns.elements() == ["198.51.100.23"]
        # The drop rule is there too (and only once).
        assert (
            ns.nft("list", "chain", "inet", "fazai", "input_blocklist").stdout.count("@blocklist drop") == 1
        )
    assert hook.bodies[0]["text"].startswith("blocked 198.51.100.23: ET SCAN Potential SSH Scan")
    assert smtp.messages[0].rcpt_tos == ["secops@example.org"]
    assert b"Subject: blocked 198.51.100.23" in smtp.messages[0].content
    # Canary rollout on the three nodes: web1, then web2 (50 %), then web3.
    stages = [e.data["targets"] for e in events if e.kind == "step" and e.data.get("status") == "stage"]
    assert stages == [["web1"], ["web2"], ["web3"]]
    kinds = [e.kind for e in events]
    assert kinds[0] == "playbook" and "approval_required" not in kinds


async def test_excepted_and_protected_sources_are_never_blocked(firewall, namespaces) -> None:
    fw, sim = firewall
    env = make_env(fw, namespaces)
    text = """
name: ssh-scan
trigger: {alert: {signature_id: 2001219}}
exceptions:
  - {cidr: 198.51.100.0/24, until: 2999-01-01T00:00:00Z, reason: partner scanner}
  - {cidr: 203.0.113.0/24, until: 2001-01-01T00:00:00Z, reason: expired long ago}
steps:
  - block_ip: {}
  - nft_block: {nodes: [web1]}
"""
    events = await run(text, alert_ctx("198.51.100.23"), env)
    skipped = [e.data["reason"] for e in events if e.kind == "step" and e.data.get("status") == "skipped"]
    assert len(skipped) == 2 and all("partner scanner" in r for r in skipped)
    assert not sim.pf_tables.get(BLOCK_ALIAS) and namespaces[0].elements() == []
    # A management address (10.0.0.0/8 in this env) is never blocked either.
    events = await run(text, alert_ctx("10.1.2.3"), env)
    assert sum("management network" in str(e.data.get("reason")) for e in events) == 2
    # An expired exception protects nothing.
    events = await run(text, alert_ctx("203.0.113.5"), env)
    assert done(events)["status"] == "success"
    assert blocked(sim, "203.0.113.5") and namespaces[0].elements() == ["203.0.113.5"]


async def test_unreachable_firewall_retries_with_backoff_fails_and_rolls_back(namespaces, tmp_path) -> None:
    dead = OPNsenseClient(
        f"http://127.0.0.1:{free_port()}", "k", "s", ClientOptions(timeout_s=1, read_retries=0)
    )
    env = make_env(None, namespaces)
    env.firewalls = FirewallPool.of({"main": Firewall(dead, tmp_path / "fw")})
    text = """
name: ssh-scan
trigger: {alert: {signature_id: 2001219}}
steps:
  - nft_block: {nodes: [web1]}
  - id: fw
    retries: 3
    backoff: 0.2s
    block_ip: {}
"""
    events = await run(text, alert_ctx(), env)
    end = done(events)
    assert end["status"] == "failed"
    assert "step fw failed on (default firewall)" in end["answer"] and "cannot connect" in end["answer"]
    assert "after 4 attempts" in end["answer"]
    assert env.sleep.delays == [0.2, 0.4, 0.8]  # exponential backoff between the 4 attempts
    # The node's block (made by the first step) was rolled back.
    assert namespaces[0].elements() == []
    assert any(e.data.get("status") == "rolled_back" for e in events if e.kind == "step")
    await dead.aclose()


async def test_canary_stops_at_the_first_failure_and_rolls_back(namespaces) -> None:
    env = make_env(None, namespaces)
    namespaces[1].close()  # web2's namespace is gone: nsenter fails there
    text = """
name: nodes
trigger: {alert: {signature_id: 2001219}}
rollout: {canary: 1, percent: 60}
steps:
  - id: nodes
    nft_block: {nodes: [web1, web2, web3]}
"""
    events = await run(text, alert_ctx(), env)
    end = done(events)
    assert end["status"] == "failed" and "step nodes failed on web2 (stage 2 of 3)" in end["answer"]
    assert namespaces[0].elements() == []  # web1 (the canary) was rolled back
    assert namespaces[2].elements() == []  # web3 never ran
    started = [e.data["targets"] for e in events if e.kind == "step" and e.data.get("status") == "stage"]
    assert started == [["web1"], ["web2"]]


async def test_approvals_by_risk_class_name_the_role() -> None:
    env = make_env()
    text = """
name: cleanup
trigger: {schedule: {every: 1h}}
approvals: {destructive: admin}
steps:
  - shell: {command: "rm -rf /tmp/fazai-playbook-test-nothing"}
"""
    denied = Approver(answer=False)
    events = await run(text, {"summary": "scheduled"}, env, denied)
    req = next(e for e in events if e.kind == "approval_required")
    assert req.data["role"] == "admin" and req.data["risk"] == "destructive"
    assert done(events)["status"] == "failed" and "needs role 'admin'" in done(events)["answer"]
    events = await run(text, {"summary": "scheduled"}, env, Approver(answer=True))
    assert done(events)["status"] == "success"


async def test_forbidden_command_is_refused_before_anything_runs() -> None:
    env = make_env()
    text = """
name: bad
trigger: {schedule: {every: 1h}}
steps:
  - shell: {command: "rm -rf /"}
"""
    events = await run(text, {"summary": "s"}, env)
    assert done(events)["status"] == "failed" and "forbidden by the safety policy" in done(events)["answer"]
    assert not any(e.kind == "exec_log" for e in events)


async def test_agent_result_feeds_later_steps(hook) -> None:
    env = make_env()
    goals: list[str] = []

    async def agent(goal: str, max_iterations: int | None) -> dict[str, Any]:
        goals.append(goal)
        return {"session": "s_child", "status": "done", "answer": "yes, block it: a known scanner"}

    env.agent = agent
    text = f"""
name: ask-first
trigger: {{alert: {{signature_id: 2001219}}}}
steps:
  - id: investigate
    agent: {{goal: "Is {{alert.src_ip}} a scanner worth blocking?"}}
  - id: tell
    when: {{step: investigate, answer_contains: "block it"}}
    webhook: {{url: "{hook.url}", message: "agent says: {{steps.investigate.answer}}"}}
  - id: never
    when: {{step: investigate, status: failed}}
    webhook: {{url: "{hook.url}"}}
"""
    events = await run(text, alert_ctx(), env)
    assert done(events)["status"] == "success"
    assert goals == ["Is 198.51.100.23 a scanner worth blocking?"]
    assert [b["text"] for b in hook.bodies] == ["agent says: yes, block it: a known scanner"]
    assert any(e.data.get("step") == "never" and e.data.get("status") == "skipped" for e in events)


async def test_webhook_server_error_is_retried_then_fails(hook) -> None:
    env = make_env()
    hook.status = 503
    text = f"""
name: hook
trigger: {{schedule: {{every: 1h}}}}
steps:
  - {{retries: 2, webhook: {{url: "{hook.url}"}}}}
"""
    events = await run(text, {"summary": "s"}, env)
    assert done(events)["status"] == "failed" and "HTTP 503" in done(events)["answer"]
    assert len(hook.bodies) == 3


async def test_nft_block_is_idempotent_and_handles_ipv6(namespaces) -> None:
    env = make_env(None, namespaces)
    text = "name: n\ntrigger: {alert: {}}\nsteps:\n  - nft_block: {nodes: [web1]}\n"
    for _ in range(2):
        assert done(await run(text, alert_ctx("198.51.100.9"), env))["status"] == "success"
    assert done(await run(text, alert_ctx("2001:db8::7"), env))["status"] == "success"
    ns = namespaces[0]
    assert ns.elements() == ["198.51.100.9"] and ns.elements(set_name="blocklist6") == ["2001:db8::7"]
    rules = ns.nft("list", "table", "inet", "fazai").stdout
    assert rules.count("ip saddr @blocklist drop") == 1 and rules.count("ip6 saddr @blocklist6 drop") == 1
