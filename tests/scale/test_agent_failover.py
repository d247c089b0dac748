"""An agent connected to one of three real fazaid replicas (PostgreSQL + NATS), and that replica dies.

A command for the node is submitted on replica A while the agent is connected to replica B: A stores
it and relays it to B over NATS, B sends it to the agent. B is killed (-9) while the command runs;
the agent reconnects to the next server in its list (C) within its backoff; C finds the open action
in the store and re-sends it (the agent does not run it again), the agent delivers output and exit
from its outbox to C, C records the result once and tells A, whose client gets it. A second command
submitted on A afterwards goes to C (the route table was rewritten on reattach).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon_harness import action, run_stream
from fleet.harness import AgentProc, FleetDaemon
from services import Nats, create_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # 3 fazaid + 1 agent: ~30-60 s on 2 busy cores


async def _migrate_and_token(url: str, ca_dir: Path) -> str:
    from fazai.fleet.ca import CertificateAuthority
    from fazai.fleet.registry import Registry
    from fazai.store import Store

    store = await Store.open(url, migrate=True)
    try:
        # The CA every replica loads ([fleet] ca_dir), created here as an operator would once.
        ca = CertificateAuthority.load_or_create(ca_dir)
        token, _, _ = await Registry(store.engine, ca).create_token("sp", 3600)
    finally:
        await store.close()
    return token


async def _rows(url: str, sql: str, *args: object) -> list[dict]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


@pytest.fixture
def cluster(
    pg_url: str, nats_server: Nats, tmp_path: Path
) -> Iterator[tuple[Callable[[str], FleetDaemon], str, str]]:
    url = create_database(pg_url, f"failover_{os.getpid()}")
    ca_dir = tmp_path / "ca"
    token = asyncio.run(_migrate_and_token(url, ca_dir))
    started: list[FleetDaemon] = []

    def make(name: str, script: list[str] | None = None) -> FleetDaemon:
        d = FleetDaemon(
            tmp_path / name,
            script=script,
            daemon_extra=f'database_url = "{url}"\nreplica_id = "{name}"\n',
            extra=f'ca_dir = "{ca_dir}"\n[bus]\nurl = "{nats_server.url}"\nretry_max_s = 0.5\n',
        )
        d.agents = []  # type: ignore[attr-defined]
        started.append(d)
        return d.start()

    yield make, url, token
    for d in started:
        for a in d.agents:  # type: ignore[attr-defined]
            a.stop()
        d.stop()


def test_kill9_of_the_replica_holding_the_agent_mid_command(cluster, tmp_path: Path) -> None:
    make, url, token = cluster
    session_script = [
        action(action="shell", command="echo from-node-$((6*7))"),
        action(action="done", answer="from-node-42", status="success"),
    ]
    a, b, c = make("a", session_script), make("b"), make("c")
    agent = AgentProc(tmp_path, "web-01")
    res = agent.enroll(a, token)
    assert res.returncode == 0, res.stderr
    a.agents.append(agent)  # type: ignore[attr-defined]
    gw = {d: f"wss://127.0.0.1:{d.gateway_port}" for d in (a, b, c)}
    # B first: the agent holds B; then C, then A (the order it fails over in).
    agent.start("--server", f"{gw[b]},{gw[c]}", "--server", gw[a])
    b.wait_connected("web-01")

    # Submitted on A, run through B: the route table says B holds web-01.
    warm = a.wait_action(a.submit("web-01", "echo warm"))
    assert warm["state"] == "done" and warm["result"]["stdout"] == "warm\n", warm
    with a.http() as h:
        agents = h.get("/fleet/agents").json()
    assert agents["routes"] == {"web-01": "b"} and agents["connected"] == []

    # A session on A whose target is the node: its command runs through B, the output comes back
    # to A and is stored and streamed as A's own exec_log events.
    with (
        a.http() as h,
        h.stream(
            "POST", "/agent/generate", json={"goal": "say hi from the node", "node": "web-01", "yes": True}
        ) as resp,
    ):
        assert resp.status_code == 200, resp.read()
        events, end = run_stream(h, resp)
    assert end is not None and end.get("status") == "done", (end, events[-3:])
    sid = events[0]["session"]
    streamed = "".join(e["data"].get("text", "") for e in events if e["kind"] == "exec_log")
    assert "from-node-42" in streamed, events
    logged = asyncio.run(_rows(url, "select data from events where session = $1 and kind = 'exec_log'", sid))
    assert "from-node-42" in "".join(str(r["data"]) for r in logged)
    ran = asyncio.run(
        _rows(
            url,
            "select node, state from fleet_actions where spec->>'command' = $1",
            "echo from-node-$((6*7))",
        )
    )
    assert ran == [{"node": "web-01", "state": "done"}]  # one action, on the node

    started, go, marker = tmp_path / "started", tmp_path / "go", tmp_path / "ran"
    cmd = (
        f"echo start; touch {started}; while [ ! -e {go} ]; do sleep 0.05; done; echo x >> {marker}; echo end"
    )
    aid = a.submit("web-01", cmd)
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "the command never started on the node:\n" + "".join(agent.lines)
        time.sleep(0.05)

    b.kill9()  # mid-command: B sent it and holds its first output, unacknowledged
    t0 = time.monotonic()
    c.wait_connected("web-01", timeout=60)
    reattach_s = time.monotonic() - t0
    go.touch()  # now the command finishes: its output and exit reach C from the agent's outbox

    row = a.wait_action(aid, timeout=90)
    assert row["state"] == "done", row
    assert row["result"]["stdout"] == "start\nend\n", row  # every chunk once, in order
    time.sleep(1.0)  # a second execution (if any) would have appended by now
    assert marker.read_text() == "x\n"  # ran exactly once, although B and then C both sent it

    stored = asyncio.run(_rows(url, "select state, exit_code, result from fleet_actions where id = $1", aid))
    assert len(stored) == 1 and stored[0]["state"] == "done" and stored[0]["exit_code"] == 0
    dispatch = asyncio.run(_rows(url, "select node, origin from agent_dispatch where action_id = $1", aid))
    assert dispatch == [{"node": "web-01", "origin": "a"}]
    assert asyncio.run(_rows(url, "select node, replica from agent_routes")) == [
        {"node": "web-01", "replica": "c"}
    ]
    with c.http() as h:
        relay = h.get("/fleet/agents").json()["relay"]
    assert relay["resumed_from_store"] >= 1, relay  # C took the in-flight action over from the store

    # After the failover a command submitted on A goes to C.
    after = a.wait_action(a.submit("web-01", "echo after"), timeout=60)
    assert after["state"] == "done" and after["result"]["stdout"] == "after\n", after
    print(f"agent re-attached to C {reattach_s:.2f} s after kill -9 of B")
