"""Playbook files: line-numbered errors, trigger matching, guards and the what-if plan."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from fazai.opnsense.alerts import parse_eve_record
from fazai.playbooks import PlaybookError, parse_playbook
from fazai.playbooks.context import alert_context
from fazai.playbooks.guards import Protected, RateLimiter, exception_for, local_gateways
from fazai.playbooks.match import MetricWatch, ScheduleClock, alert_matches, node_state_matches
from fazai.playbooks.plan import rollout_stages
from fazai.playbooks.schema import Rollout
from fazai.playbooks.whatif import render_text, what_if
from opnsense_sim.eve import SSH_SCAN_ALERT

from .conftest import make_env

TYPO = """\
name: ssh-scan
trigger:
  alert:
    signature_id: 2001219
    severity_max: 2
steps:
  - block_ip: {ttl: 1h}
  - nft_block:
      nodez: [web1]
  - webhook:
      url: ftp://example.org/hook
"""


def test_typos_and_bad_values_are_reported_with_their_lines() -> None:
    with pytest.raises(PlaybookError) as exc:
        parse_playbook(TYPO, "ssh.yaml")
    msg = str(exc.value)
    assert "ssh.yaml:9: steps[1].nft_block: unknown key 'nodez' (did you mean 'nodes'?)" in msg
    assert "ssh.yaml:11: steps[2].webhook.url: String should match pattern" in msg
    assert [p.line for p in exc.value.problems] == [9, 11]


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("name: x\ntrigger: {alert: {}}\nsteps:\n  - block_ip: {}\n    shell: {command: ls}\n", 4,
         "exactly one of shell"),
        ("name: x\ntrigger: {alert: {}, schedule: {every: 5m}}\nsteps: [{block_ip: {}}]\n", 2,
         "got alert, schedule"),
        ("name: x\ntrigger: {metric: {name: disk, above: 90, for: soon}}\nsteps: [{block_ip: {}}]\n", 2,
         "'soon' is not a duration"),
        ("name: x\ntrigger: {alert: {src: 300.1.1.1/8}}\nsteps: [{block_ip: {}}]\n", 2, "is not a network"),
        ("name: x\ntrigger: {alert: {}}\nsteps:\n  - block_ip: {}\n   bad indent\n", 5, "not valid YAML"),
        ("name: x\ntrigger: {alert: {}}\nsteps:\n  - id: a\n    when: {step: later}\n    block_ip: {}\n", 5,
         "not an earlier step"),
        # An approver role the daemon does not grant (a typo, or a team name): refused at load.
        ("name: x\ntrigger: {alert: {}}\napprovals:\n  changes_state: secops\nsteps: [{block_ip: {}}]\n", 3,
         "'secops' cannot approve: name one of approver, admin"),
        ("name: x\ntrigger: {alert: {}}\napprovals: {destructive: operator}\nsteps: [{block_ip: {}}]\n", 3,
         "'operator' cannot approve"),
    ],
)  # fmt: skip
def test_more_bad_files(text: str, line: int, needle: str) -> None:
    with pytest.raises(PlaybookError) as exc:
        parse_playbook(text)
    assert exc.value.problems[0].line == line, str(exc.value)
    assert needle in str(exc.value)


def _alert(**changes):
    rec = copy.deepcopy(SSH_SCAN_ALERT)
    rec.update({k: v for k, v in changes.items() if k != "alert"})
    rec["alert"].update(changes.get("alert", {}))
    a = parse_eve_record(rec)
    assert a is not None
    return a


def test_alert_matching() -> None:
    pb = parse_playbook(
        "name: x\ntrigger:\n  alert: {signature_id: [2001219, 5], category: 'attempted*', severity_max: 2,\n"
        "          src: [198.51.100.0/24], dst: 192.0.2.0/24, interface: em0}\nsteps: [{block_ip: {}}]\n"
    )
    m = pb.trigger.alert
    assert alert_matches(m, _alert())
    assert not alert_matches(m, _alert(alert={"severity": 3}))
    assert not alert_matches(m, _alert(src_ip="203.0.113.1"))
    assert not alert_matches(m, _alert(dest_ip="192.0.3.1"))
    assert not alert_matches(m, _alert(in_iface="em1"))
    assert not alert_matches(m, _alert(alert={"category": "Policy"}))
    assert not alert_matches(m, _alert(alert={"signature_id": 7}))


def test_metric_threshold_must_hold_for_the_duration() -> None:
    pb = parse_playbook(
        "name: disk\ntrigger: {metric: {name: disk_used_pct, node: 'web*', above: 90, for: 5m}}\n"
        "steps: [{shell: {command: df -h}}]\n"
    )
    w = MetricWatch()
    assert not w.observe(pb, "web1", "disk_used_pct", 95, 0)
    assert not w.observe(pb, "web1", "disk_used_pct", 95, 299)
    assert w.observe(pb, "web1", "disk_used_pct", 96, 300)
    assert not w.observe(pb, "web1", "disk_used_pct", 97, 400)  # fired once for this crossing
    assert not w.observe(pb, "web1", "disk_used_pct", 50, 500)  # back to normal re-arms
    assert not w.observe(pb, "web1", "disk_used_pct", 95, 600)
    assert w.observe(pb, "web1", "disk_used_pct", 95, 900)
    assert not w.observe(pb, "db1", "disk_used_pct", 99, 0)  # another node pattern


def test_schedule_and_node_state() -> None:
    pb = parse_playbook("name: s\ntrigger: {schedule: {every: 10m}}\nsteps: [{shell: {command: uptime}}]\n")
    clock = ScheduleClock()
    assert clock.tick([pb], 0) == [] and clock.tick([pb], 599) == [] and clock.tick([pb], 600) == [pb]
    ns = parse_playbook("name: n\ntrigger: {node_state: {to: down}}\nsteps: [{shell: {command: uptime}}]\n")
    assert node_state_matches(ns.trigger.node_state, "web1", "up", "down")
    assert not node_state_matches(ns.trigger.node_state, "web1", "down", "down")


def test_guards() -> None:
    p = Protected.build(management=["192.0.2.0/24"], operators=["203.0.113.7"], detect_local=False)
    assert "management network" in p.reason("192.0.2.9")
    assert "operator" in p.reason("203.0.113.7")
    assert "loopback" in p.reason("127.0.0.1")
    assert p.reason("198.51.100.1") is None
    assert "management" in p.reason("192.0.0.0/16")  # a wider block would cover it
    for gw in local_gateways():
        assert "gateway" in Protected.build().reason(gw)
    pb = parse_playbook(
        "name: x\ntrigger: {alert: {}}\nexceptions: [{cidr: 198.51.100.0/24, until: 2030-01-01}]\n"
        "rate_limit: {max_runs: 2, per: 1m}\nsteps: [{block_ip: {}}]\n"
    )
    assert exception_for(pb, "198.51.100.4", datetime(2029, 1, 1, tzinfo=UTC))
    assert exception_for(pb, "198.51.100.4", datetime(2031, 1, 1, tzinfo=UTC)) is None
    now = [0.0]
    rl = RateLimiter(clock=lambda: now[0])
    assert rl.check(pb) is None and rl.check(pb) is None
    assert "rate limit" in rl.check(pb)
    now[0] = 61
    assert rl.check(pb) is None


def test_rollout_stages() -> None:
    assert rollout_stages(1, Rollout()) == [[0]]
    assert rollout_stages(10, Rollout(canary=1, percent=50)) == [[0], [1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert rollout_stages(3, Rollout(canary=0, percent=100)) == [[0, 1, 2]]


def test_what_if_prints_exactly_what_would_run_and_changes_nothing() -> None:
    pb = parse_playbook(
        """
name: ssh-scan
description: block SSH scanners
trigger: {alert: {signature_id: 2001219}}
approvals: {changes_state: approver}
steps:
  - block_ip: {ttl: 1h}
  - nft_block: {nodes: [local]}
  - id: ask
    agent: {goal: "investigate {alert.src_ip}"}
  - when: {step: ask, status: done}
    webhook: {url: "http://127.0.0.1:42599/x", message: "{steps.ask.answer}"}
"""
    )
    ctx = alert_context(_alert(), alert_id="a_1")
    env = make_env()
    plan = what_if(pb, ctx, env)
    text = render_text(pb, ctx, plan, matched=True)
    assert "1. [block_ip1] block_ip: risk changes_state, needs approval by role 'approver'" in text
    assert "block 198.51.100.23 on (default firewall) (alias fazai_block) for 3600s" in text
    assert "; add element inet fazai blocklist { 198.51.100.23 }'" in text
    assert "undo: $ nft delete element inet fazai blocklist '{ 198.51.100.23 }'" in text
    assert "open an agent session: investigate 198.51.100.23" in text
    assert "POST to http://127.0.0.1:42599/x: <answer of step ask>" in text
    assert "only if step 'ask' ends 'done'" in text


def test_what_if_refuses_a_bad_address_before_any_shell() -> None:
    pb = parse_playbook("name: x\ntrigger: {alert: {}}\nsteps:\n  - nft_block: {ip: '{alert.signature}'}\n")
    plan = what_if(pb, alert_context(_alert()), make_env())
    assert plan[0].refused and "is not an IP address" in plan[0].refused
