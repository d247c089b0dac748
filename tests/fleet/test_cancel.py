"""Remote cancel (``command.cancel``): the node kills the command's process group, for real."""

from __future__ import annotations

import asyncio
import threading
import time

from daemon_harness import action, find_procs, run_stream, wait_for
from fazai.targets.agent import AgentTarget
from fleet.harness import AgentProc, FleetDaemon
from fleet.inproc import fleet_with_agents


async def _until(pred) -> None:
    deadline = time.monotonic() + 60
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_cancel_kills_the_remote_process_group_and_dequeues(tmp_path) -> None:
    # max_concurrent 1: a second command waits in the hub's queue, a third is cancelled there.
    async with fleet_with_agents(tmp_path, ["c-01"], {"max_concurrent": 1}) as (fleet, _, _):
        hub = fleet.hub
        assert "command.cancel" in hub.conns["c-01"].hello.capabilities  # announced (wire revision 2)
        target = AgentTarget(hub, "c-01", session="s_cancel")
        cancel = asyncio.Event()
        # A child in the background and one in the foreground: both are in the command's process group.
        cmd = "sleep 31.4201 & sleep 31.4202; echo never"
        run = asyncio.ensure_future(target.run(cmd, on_output=None, cancel=cancel))
        await _until(lambda: len(find_procs("sleep 31.420")) >= 2)
        aid = target.last_action
        (queued,) = await hub.submit(["c-01"], "command.exec", {"command": "echo queued-never-ran"})
        assert await hub.cancel(queued.id, "not needed") == "dequeued"
        cancel.set()
        res = await asyncio.wait_for(run, 30)
        assert res.cancelled and not res.ok and res.exit_code < 0 and "never" not in res.stdout
        # The node confirmed before run() returned: the whole group is gone.
        assert find_procs("sleep 31.420") == []
        row = await hub.actions.get(aid)
        assert row["state"] == "failed" and row["result"]["cancelled"] is True and row["exit_code"] < 0
        gone = await hub.actions.get(queued.id)
        assert gone["state"] == "failed" and gone["result"]["cancelled"] is True
        assert "not needed" in gone["result"]["error"]
        assert await hub.cancel(aid) == "finished"
        # The node still works (and the dequeued action never ran there).
        ok = await target.run("echo after")
        assert ok.ok and ok.stdout == "after\n"


def test_aborted_session_ends_its_remote_command(tmp_path) -> None:
    """fazaid + a real agent: a session on the node is aborted mid-command; the command dies there."""
    d = FleetDaemon(
        tmp_path / "srv",
        script=[
            action(action="shell", command="sleep 31.4242"),
            action(action="done", answer="after abort", status="success"),
        ],
    ).start()
    agent = AgentProc(d.home, "s-01")
    try:
        res = agent.enroll(d, d.token())
        assert res.returncode == 0, res.stderr
        agent.start()
        d.wait_connected("s-01")
        # No wait for the batched heartbeat: a connected node is reachable at once (hub.is_connected).
        holder: dict = {}
        with d.http() as c, c.stream("POST", "/agent/generate", json={"goal": "wait", "node": "s-01"}) as r:
            assert r.status_code == 200, r.read()
            sid = r.headers["X-Session-Id"]

            def abort_when_running() -> None:
                holder["pids"] = wait_for(lambda: find_procs("sleep 31.4242"), 60)
                with d.http() as c2:
                    holder["aborted"] = c2.post("/agent/abort", json={"session": sid}).json()["aborted"]

            t = threading.Thread(target=abort_when_running)
            t.start()
            events, end = run_stream(c, r)
            t.join()
        assert holder["aborted"] is True and end and end["status"] == "aborted"
        exec_end = next(e for e in events if e["kind"] == "exec_end")
        assert exec_end["data"]["cancelled"] is True
        # Gone on the node, not just abandoned by the session.
        assert find_procs("sleep 31.4242") == []
        with d.http() as c:
            actions = [a for a in c.get("/fleet/agents").json()["connected"] if a["node"] == "s-01"]
        assert actions and actions[0]["running"] == 0
    finally:
        agent.stop()
        d.stop()
