"""fazaid + fazai-agent processes over real mTLS on loopback: enroll, run, refuse, revoke, restart."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from fleet.conftest import enrolled
from fleet.harness import AgentProc, FleetDaemon, free_port


def test_command_streams_and_exits(fleet: FleetDaemon) -> None:
    enrolled(fleet, "web-01")
    aid = fleet.submit("web-01", "echo out; echo err >&2; exit 3")
    row = fleet.wait_action(aid)
    assert row["state"] == "failed" and row["exit_code"] == 3
    assert row["result"]["stdout"] == "out\n" and row["result"]["stderr"] == "err\n"
    ok = fleet.wait_action(fleet.submit("web-01", "uname -s"))
    assert ok["state"] == "done" and ok["result"]["stdout"].strip() == "Linux"
    # The enrolled agent is in the inventory: transport agent, its version and a heartbeat. Hellos are
    # written in batches (fleet/registry.py touch_many), so the row may trail the connection a little.
    deadline, node = time.monotonic() + 20, {}
    with fleet.http() as c:
        while time.monotonic() < deadline:
            node = c.get("/nodes/web-01").json()
            if node.get("transport") == "agent" and node.get("version") and node.get("last_heartbeat"):
                break
            time.sleep(0.2)
    assert node.get("transport") == "agent" and node.get("version") and node.get("last_heartbeat"), node


def test_forbidden_refused_by_the_node(fleet: FleetDaemon, tmp_path) -> None:
    enrolled(fleet, "web-02")
    row = fleet.wait_action(fleet.submit("web-02", "rm -rf --no-preserve-root /"))
    assert row["state"] == "failed"
    assert "safety policy" in row["result"]["refused"] and "forbidden" in row["result"]["refused"]


def test_agent_takes_the_next_server_in_its_list(fleet: FleetDaemon) -> None:
    # Nothing listens on the first URL (a dead replica): the agent goes on to the next one.
    dead = f"wss://127.0.0.1:{free_port()}"
    live = f"wss://127.0.0.1:{fleet.gateway_port}"
    a = enrolled(fleet, "web-05", "--server", dead, "--server", live)
    assert any(f"disconnected from {dead}" in line and f"reconnecting to {live}" in line for line in a.lines)
    row = fleet.wait_action(fleet.submit("web-05", "echo via-second"))
    assert row["state"] == "done" and row["result"]["stdout"] == "via-second\n"


def test_revoke_cuts_the_live_connection(fleet: FleetDaemon) -> None:
    a = enrolled(fleet, "web-03")
    fleet.cli("nodes", "revoke", "web-03", "--reason", "decommissioned")
    fleet.wait_connected("web-03", present=False, timeout=30)
    assert a.proc is not None and a.proc.wait(60) == 3  # reconnect refused at the handshake: it stops
    cut = [e for e in fleet.logged("agent_cut") if e.get("node") == "web-03"]
    refused = [e for e in fleet.logged("agent_refused") if e.get("node") == "web-03"]
    assert cut and "revoked" in cut[0]["reason"]
    assert refused and "decommissioned" in refused[0]["reason"]
    assert any("refused this node" in line for line in a.lines)


def test_restart_mid_command_loses_nothing_runs_once(fleet: FleetDaemon, tmp_path) -> None:
    enrolled(fleet, "web-04")
    marker = tmp_path / "ran"
    aid = fleet.submit("web-04", f"echo start; sleep 1.5; echo x >> {marker}; echo end")
    time.sleep(0.6)
    fleet.kill9()
    time.sleep(1.5)  # the command finishes while fazaid is down: its result waits in the outbox
    fleet.start()
    fleet.wait_connected("web-04")
    row = fleet.wait_action(aid)
    assert row["state"] == "done", row
    assert row["result"]["stdout"] == "start\nend\n"
    time.sleep(0.5)
    assert marker.read_text() == "x\n"  # resent after the restart, not run again


@pytest.mark.slow  # a fazaid, two enrollments and ~6 `fazai` CLI processes: ~20 s of CPU
def test_operator_approval_then_reject(tmp_path) -> None:
    d = FleetDaemon(tmp_path / "srv", approval=True).start()
    agent = AgentProc(d.home, "db-01")
    d.agents = [agent]  # type: ignore[attr-defined]
    try:
        enrolling = subprocess.Popen(
            agent._cmd(
                "enroll",
                "--server",
                d.enroll_url,
                "--token",
                d.token(),
                "--name",
                "db-01",
                "--poll",
                "0.3",
                "--wait",
                "60",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        pending: list[dict] = []
        for _ in range(200):
            pending = json.loads(d.cli("nodes", "pending", "--json").stdout)
            if pending:
                break
            time.sleep(0.2)
        assert [p["node"] for p in pending] == ["db-01"]
        assert enrolling.poll() is None  # waiting for the operator
        d.cli("nodes", "approve", pending[0]["id"])
        out, err = enrolling.communicate(timeout=60)
        assert enrolling.returncode == 0, err
        assert "enrolled as db-01" in out
        agent.start()
        d.wait_connected("db-01")
        # A second node is rejected: its enroll command fails with the reason.
        other = AgentProc(d.home, "db-02")
        rejecting = subprocess.Popen(
            other._cmd(
                "enroll",
                "--server",
                d.enroll_url,
                "--token",
                d.token(),
                "--name",
                "db-02",
                "--poll",
                "0.3",
                "--wait",
                "60",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(200):
            pending = json.loads(d.cli("nodes", "pending", "--json").stdout)
            if pending:
                break
            time.sleep(0.2)
        d.cli("nodes", "reject", pending[0]["id"])
        _, err = rejecting.communicate(timeout=60)
        assert rejecting.returncode == 2 and "rejected" in err
    finally:
        agent.stop()
        d.stop()


def test_agent_telemetry_lands_in_the_metric_store(fleet: FleetDaemon) -> None:
    import os

    enrolled(fleet, "web-07", "--telemetry", "0.5")
    deadline, latest = time.monotonic() + 60, {}
    with fleet.http() as c:
        while time.monotonic() < deadline:
            r = c.get("/telemetry/nodes/web-07")
            latest = r.json().get("latest", {}) if r.status_code == 200 else {}
            if {"load1", "mem_used_pct", "disk_used_pct", "cpu_pct"} <= set(latest):
                break
            time.sleep(0.5)
    assert {"load1", "mem_used_pct", "disk_used_pct", "cpu_pct"} <= set(latest), latest
    st = os.statvfs("/")  # the agent runs on this machine: its disk figure is this disk's
    used = 100.0 * (st.f_blocks - st.f_bavail) / st.f_blocks
    assert abs(latest["disk_used_pct"]["value"] - used) < 2.0
    assert 0 <= latest["mem_used_pct"]["value"] <= 100 and latest["load1"]["value"] >= 0
    assert abs(latest["load1"]["ts"] - time.time()) < 60  # the agent's sample time, not the arrival
