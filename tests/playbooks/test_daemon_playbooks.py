"""A real fazaid follows an eve.json and runs playbooks as sessions: the OPNsense simulator's alias
and an nft set in a network namespace get the source; runs are listed, approved and aborted over
HTTP; malformed lines are counted; /metrics exports node gauges."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon_harness import Daemon, action, sse_messages
from fazai.opnsense.store import FirewallEntry, FirewallStore
from opnsense_sim.keys import KEY, SECRET, install_keys
from telemetry.conftest import eve_line

from .conftest import Netns
from .test_engine import blocked

BLOCK = """
name: ssh-scan
trigger: {alert: {signature_id: 2001219, severity_max: 2}}
exceptions: [{cidr: 203.0.113.0/24, reason: partner}]
steps:
  - id: fw
    block_ip: {ttl: 1h}
  - id: nodes
    nft_block: {nodes: [web1]}
"""

AGENT = """
name: ask-agent
trigger: {alert: {signature_id: 777}}
steps:
  - id: investigate
    agent: {goal: "Is {alert.src_ip} worth blocking?", max_iterations: 3}
  - when: {step: investigate, answer_contains: "block it"}
    nft_block: {nodes: [web1]}
"""

GATED = """
name: gated
trigger: {alert: {signature_id: 999}}
approvals: {changes_state: approver}
steps:
  - nft_block: {nodes: [web1]}
"""


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def setup(tmp_path: Path, sim_server, netns_ok) -> Iterator[tuple[Daemon, Any, Netns, Path]]:
    sim, url = sim_server
    sim.reset()
    install_keys(sim)
    ns = Netns()
    home = tmp_path / "home"
    books = home / "playbooks"
    books.mkdir(parents=True)
    (books / "block.yaml").write_text(BLOCK)
    (books / "gated.yaml").write_text(GATED)
    (books / "agent.yaml").write_text(AGENT)
    (books / "typo.yaml").write_text("name: typo\ntrigger: {alert: {}}\nsteps:\n  - block_ipp: {}\n")
    FirewallStore(home / "state").add(FirewallEntry(name="main", url=url, timeout_s=5), KEY, SECRET)
    eve = home / "eve.json"
    eve.write_text("")
    extra = f"""
[telemetry]
eve_files = ["{eve}"]
sample_interval_s = 0.2
[playbooks]
dir = "{books}"
detect_local = false
management = ["10.0.0.0/8"]
[playbooks.nodes.web1]
kind = "netns"
netns = "{ns.path}"
"""
    # The answer gate may send an answer back once (grounding): the same answer twice.
    script = [action(action="done", answer="yes, block it: it scans every port", status="success")] * 2
    d = Daemon(home, script, extra).start(timeout=120)  # imports take long on a loaded machine
    try:
        yield d, sim, ns, eve
    finally:
        d.stop()
        ns.close()


def append(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.write("".join(line + "\n" for line in lines))


def events_of(c: Any, sid: str) -> list[dict[str, Any]]:
    with c.stream("GET", f"/agent/sessions/{sid}/events", params={"follow": "false"}) as resp:
        return [data for name, data, _ in sse_messages(resp) if name == "message"]


def test_eve_line_to_blocks_through_the_daemon(setup) -> None:
    d, sim, ns, eve = setup
    with d.client() as c:
        listing = c.get("/playbooks").json()
        assert sorted(p["name"] for p in listing["playbooks"]) == ["ask-agent", "gated", "ssh-scan"]
        assert any("typo.yaml:4" in e and "unknown key 'block_ipp'" in e for e in listing["errors"])
        append(eve, eve_line(src="198.51.100.77"), "{not json", eve_line(src="198.51.100.77"))
        wait_for(lambda: blocked(sim, "198.51.100.77") and ns.elements() == ["198.51.100.77"], what="blocks")
        runs = wait_for(lambda: ended_runs(c),
                        what="the run to end")  # fmt: skip
        assert len(runs) == 1 and runs[0]["status"] == "done" and runs[0]["playbook"] == "ssh-scan"
        sid = runs[0]["session"]
        assert any(s["id"] == sid and s["mode"] == "playbook" for s in c.get("/agent/sessions").json())
        kinds = [e["kind"] for e in events_of(c, sid)]
        assert kinds[:2] == ["alert", "playbook"] and kinds[-1] == "done"
        # The duplicate folded into the alert; the broken line was counted and kept.
        counters = c.get("/telemetry/ingest").json()[f"eve:{eve}"]
        assert counters == {"lines": 3, "alerts": 1, "duplicates": 1, "other": 0, "rejected": 1, "blank": 0}
        alerts = c.get("/alerts").json()
        assert alerts[0]["count"] == 2 and alerts[0]["raw"]["src_ip"] == "198.51.100.77"
        # An excepted source starts a run that blocks nothing.
        append(eve, eve_line(src="203.0.113.8"))
        wait_for(lambda: len(c.get("/playbooks/runs").json()) == 2, what="second run")
        wait_for(lambda: c.get("/playbooks/runs").json()[0]["status"] == "done", what="second run done")
        assert not blocked(sim, "203.0.113.8") and ns.elements() == ["198.51.100.77"]
        # Local facts are sampled and exported.
        text = wait_for(
            lambda: (t := c.get("/metrics").text) and "fazai_node_metric{" in t and t, what="gauges"
        )
        assert 'fazai_eve_lines_total{outcome="rejected",source="eve:' in text


def test_runs_wait_for_approval_and_can_be_aborted(setup) -> None:
    d, _sim, ns, _eve = setup
    with d.client() as c:
        r = c.post(
            "/alerts", json={"source": "api", "records": [json.loads(eve_line(src="198.51.100.5", sid=999))]}
        )
        assert r.status_code == 200, r.text
        (sid,) = r.json()["sessions"]
        waiting = wait_for(lambda: c.get(f"/agent/sessions/{sid}").json()["waiting_for"], what="approval")
        ev = next(e for e in events_of(c, sid) if e["kind"] == "approval_required")
        assert ev["data"]["role"] == "approver" and "198.51.100.5" in ev["data"]["summary"]
        assert ns.elements() == []  # nothing before the approval
        r = c.post("/agent/reply", json={"session": sid, "action": waiting[0]["action"], "approved": True})
        assert r.status_code == 200, r.text
        wait_for(lambda: c.get(f"/agent/sessions/{sid}").json()["status"] == "done", what="approved run")
        assert ns.elements() == ["198.51.100.5"]
        # Another one is aborted while it waits.
        r = c.post("/playbooks/gated/run", json={"alert": json.loads(eve_line(src="198.51.100.6", sid=999))})
        sid2 = r.json()["session"]
        wait_for(lambda: c.get(f"/agent/sessions/{sid2}").json()["waiting_for"], what="approval")
        assert c.post("/agent/abort", json={"session": sid2}).json()["aborted"] is True
        wait_for(lambda: c.get(f"/agent/sessions/{sid2}").json()["status"] == "aborted", what="abort")
        assert ns.elements() == ["198.51.100.5"]


def test_an_agent_step_opens_a_session_whose_answer_feeds_the_next_step(setup) -> None:
    d, _sim, ns, eve = setup
    with d.client() as c:
        append(eve, eve_line(src="198.51.100.44", sid=777))
        run = wait_for(lambda: ended_runs(c),
                       timeout=30, what="the playbook run")[0]  # fmt: skip
        assert run["status"] == "done", run
        assert ns.elements() == ["198.51.100.44"]
        evs = events_of(c, run["session"])
        ok = next(e for e in evs if e["kind"] == "step" and e["data"].get("step") == "investigate"
                  and e["data"].get("status") == "ok")  # fmt: skip
        child = ok["data"]["result"]["session"]
        agent = c.get(f"/agent/sessions/{child}").json()
        assert agent["goal"] == "Is 198.51.100.44 worth blocking?" and agent["mode"] == "agent"
        assert "block it" in agent["summary"]


def ended_runs(c) -> list[dict]:  # type: ignore[no-untyped-def]
    """Playbook runs whose session has ended (a run is `created`, then `running`, then final)."""
    return [r for r in c.get("/playbooks/runs").json() if r["status"] not in ("created", "running")]
