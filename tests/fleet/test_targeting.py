"""``fazai agent --nodes SELECTOR``: one goal on several agent nodes, a session each, a row per node."""

from __future__ import annotations

import json
import subprocess
import sys

from daemon_harness import REPO, action, sse_messages, wait_for
from fleet.harness import AgentProc, FleetDaemon


def test_agent_goal_fans_out_over_agent_nodes(tmp_path) -> None:
    mark = tmp_path / "changed"
    per_node_denied = [
        action(action="shell", command=f"touch {mark}"),  # changes state: needs an approval
        action(action="done", answer="left as is", status="success"),
    ]
    per_node_read = [
        action(action="shell", command="echo kernel-$(uname -s)"),
        action(action="done", answer="Linux", status="success"),
    ]
    # --concurrency 1: the scripted model answers the nodes' sessions one after the other.
    d = FleetDaemon(tmp_path / "srv", script=per_node_denied * 2 + per_node_read * 2).start()
    agents = [AgentProc(d.home, n) for n in ("fa-01", "fa-02")]
    try:
        for a in agents:
            res = a.enroll(d, d.token())
            assert res.returncode == 0, res.stderr
            a.start()
        for a in agents:
            d.wait_connected(a.name)
        with d.http() as c:  # both in the inventory (hellos are written in batches)
            wait_for(lambda: len(c.get("/nodes", params={"selector": "transport=agent"}).json()) == 2, 30)

        def fazai(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "fazai.cli.main", *args],
                env={**d.env(), "FAZAI_DAEMON__PORT": str(d.port)},
                cwd=REPO, capture_output=True, text=True, timeout=240,
            )  # fmt: skip

        # No --yes: nobody is asked per node, so the change is denied on each node (never hangs).
        res = fazai("agent", "--daemon", "--json", "--nodes", "transport=agent", "--concurrency", "1", "go")
        report = json.loads(res.stdout.strip().splitlines()[-1])
        assert [r["node"] for r in report["nodes"]] == ["fa-01", "fa-02"], res.stderr
        assert report["mode"] == "agent" and not mark.exists()
        assert all(r["answer"] == "left as is" and r["session"] for r in report["nodes"])

        res = fazai("agent", "--daemon", "--json", "--yes", "--nodes", "site=sp,transport=agent",
                    "--concurrency", "1", "which kernel?")  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
        report = json.loads(res.stdout.strip().splitlines()[-1])
        assert report["total"] == 2 and report["answered"] == 2 and report["differ"] == 0
        assert "0 of 2 nodes differ" in report["summary"]
        # Each node's command ran on that node, through its agent: one fleet action per session.
        with d.http() as c:
            for row in report["nodes"]:
                r = c.get(f"/agent/sessions/{row['session']}/events", params={"after": 0, "follow": False})
                events = [data for name, data, _ in sse_messages(r) if name == "message"]
                logs = "".join(e["data"].get("text", "") for e in events if e["kind"] == "exec_log")
                assert "kernel-Linux" in logs
                assert any(e["kind"] == "node" and e["data"].get("node") == row["node"] for e in events)

        bad = fazai("agent", "--nodes", "transport=agent", "--node", "fa-01", "go")
        assert bad.returncode == 2 and "not with --node" in bad.stderr
    finally:
        for a in agents:
            a.stop()
        d.stop()
