"""fazaid + fazai-agent processes over real mTLS on loopback: enroll, run, refuse, revoke, restart."""

from __future__ import annotations

import time

from fleet.conftest import enrolled
from fleet.harness import FleetDaemon


def test_command_streams_and_exits(fleet: FleetDaemon) -> None:
    enrolled(fleet, "web-01")
    aid = fleet.submit("web-01", "echo out; echo err >&2; exit 3")
    row = fleet.wait_action(aid)
    assert row["state"] == "failed" and row["exit_code"] == 3
    assert row["result"]["stdout"] == "out\n" and row["result"]["stderr"] == "err\n"
    ok = fleet.wait_action(fleet.submit("web-01", "uname -s"))
    assert ok["state"] == "done" and ok["result"]["stdout"].strip() == "Linux"


def test_forbidden_refused_by_the_node(fleet: FleetDaemon, tmp_path) -> None:
    enrolled(fleet, "web-02")
    row = fleet.wait_action(fleet.submit("web-02", "rm -rf --no-preserve-root /"))
    assert row["state"] == "failed"
    assert "safety policy" in row["result"]["refused"] and "forbidden" in row["result"]["refused"]


def test_revoke_cuts_the_live_connection(fleet: FleetDaemon) -> None:
    a = enrolled(fleet, "web-03")
    fleet.cli("nodes", "revoke", "web-03", "--reason", "decommissioned")
    fleet.wait_connected("web-03", present=False, timeout=10)
    assert a.proc is not None and a.proc.wait(20) == 3  # reconnect refused at the handshake: it stops
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
