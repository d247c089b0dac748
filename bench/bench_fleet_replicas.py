"""The fleet bench against 1 and 3 fazaid replicas (PostgreSQL + NATS), with a kill -9 failover.

    .venv/bin/python bench/bench_fleet_replicas.py               # 200 agents
    .venv/bin/python bench/bench_fleet_replicas.py --agents 2000 # bigger

Same simulated agents as bench/bench_fleet.py (real mTLS and frames, in this process; they answer
``command.exec`` at once, keep executed ids and an outbox), here with a list of gateways they fail
over along, as ``fazai-agent --server`` does. One PostgreSQL, one ``nats-server -js`` and three real
fazaid replicas sharing one fleet CA; every action is submitted through replica A's HTTP API.

1. **1 replica** (the baseline): A alone; all agents on it. Connections held, fan-out of ``true`` to
   all nodes (p50/p99 from the POST to each result stored and acknowledged to the agent).
2. **3 replicas**: B and C start; new agents spread over A, B, C (each with the other two as
   fallbacks). Connections held (per replica), the same fan-out (2/3 of it relayed A → B/C over NATS).
3. **failover**: the agents on B keep their results in their outboxes (in flight), a fan-out to all
   nodes is submitted on A, every agent has executed it, then B is killed (-9). Measured from the
   kill: all of B's agents re-attached to A or C, and every action of that fan-out with its result
   stored (PostgreSQL); duplicate executions (an agent asked to run an id it already ran counts as a
   resend, not an execution).

Prints each figure and ratios against the 1-replica baseline of the same run. Ports come from
``$FAZAI_TEST_PORTS`` when set (as in the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from bench_fleet import SimAgent, fanout, issue_certs, pct  # noqa: E402

from fazai.store import Store  # noqa: E402
from fleet.harness import FleetDaemon  # noqa: E402
from services import Nats, Postgres, create_database  # noqa: E402


def _agents(names: list[str], certs: Path, ca: Path, urls_of: list[list[str]]) -> list[SimAgent]:
    out = []
    for i, name in enumerate(names):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=str(ca))
        ctx.load_cert_chain(certs / f"{name}.crt", certs / f"{name}.key")
        out.append(SimAgent(name, ctx, urls_of[i % len(urls_of)][0], more_urls=urls_of[i % len(urls_of)][1:]))
    return out


async def _connect(agents: list[SimAgent]) -> tuple[list[asyncio.Task[None]], float]:
    t = time.monotonic()
    tasks = []
    for a in agents:
        tasks.append(asyncio.create_task(a.run()))
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*(a.registered.wait() for a in agents)), 600)
    return tasks, time.monotonic() - t


async def _disconnect(agents: list[SimAgent], tasks: list[asyncio.Task[None]]) -> None:
    for a in agents:
        a.stop = True
        a.drop()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _held(replicas: list[FleetDaemon]) -> list[int]:
    out = []
    for d in replicas:
        async with httpx.AsyncClient(
            base_url=d.url, headers={"Authorization": f"Bearer {d.api_token}"}, timeout=60
        ) as c:
            out.append(len((await c.get("/fleet/agents")).json()["connected"]))
    return out


async def _fanout_stats(http: httpx.AsyncClient, agents: list[SimAgent]) -> tuple[float, float, float, int]:
    single = []
    for _ in range(5):
        lat, _ = await fanout(http, agents[:1])
        single += lat
    lat, _ = await fanout(http, agents)
    return statistics.median(single) * 1000, pct(lat, 50) * 1000, pct(lat, 99) * 1000, len(lat)


async def _open_count(url: str, ids: list[str]) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "select count(*) from fleet_actions where id = any($1::text[]) "
                "and state not in ('done', 'failed')",
                ids,
            )
        )
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    import asyncio.sslproto

    asyncio.sslproto.SSLProtocol.max_size = 32 * 1024  # as the gateway (fleet/gateway.py)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.agents * 4 + 1024)), hard))
    n = args.agents
    t_run = time.monotonic()
    pg = Postgres().start()
    nats = Nats().start()
    replicas: list[FleetDaemon] = []
    if args.tmp:
        Path(args.tmp).mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="fazai-bench-failover-", dir=args.tmp))
    try:
        url = await asyncio.to_thread(create_database, pg.url, "bench_failover")
        store = await Store.open(url, migrate=True)
        await store.close()
        ca_parent = home / "ca"  # issue_certs uses <dir>/fleet, the CA every replica loads
        await issue_certs(url, ca_parent, n, home / "certs")
        ca_dir = ca_parent / "fleet"

        def replica(name: str) -> FleetDaemon:
            d = FleetDaemon(
                home / name,
                daemon_extra=f'database_url = "{url}"\nreplica_id = "{name}"\n',
                extra=f'ca_dir = "{ca_dir}"\n[bus]\nurl = "{nats.url}"\nretry_max_s = 0.5\n',
            )
            replicas.append(d)
            return d.start(timeout=180)

        a = replica("a")
        http = httpx.AsyncClient(
            base_url=a.url, headers={"Authorization": f"Bearer {a.api_token}"}, timeout=120
        )
        names = [f"sim-{i:05d}" for i in range(n)]
        gw = lambda d: f"wss://127.0.0.1:{d.gateway_port}"  # noqa: E731
        print(f"# bench_fleet_replicas: {n} simulated agents, {os.cpu_count()} CPUs", flush=True)

        # 1. One replica.
        one = _agents(names, home / "certs", ca_dir / "ca.crt", [[gw(a)]])
        tasks, conn1_s = await _connect(one)
        await asyncio.sleep(0.5)
        held1 = await _held([a])
        base1, p50_1, p99_1, got1 = await _fanout_stats(http, one)
        print(f"1 replica: {sum(held1)}/{n} connections held (registered in {conn1_s:.1f} s)", flush=True)
        print(
            f"1 replica: fan-out to {got1}/{n}: p50 {p50_1:.0f} ms, p99 {p99_1:.0f} ms "
            f"(1 node {base1:.1f} ms) [baseline]",
            flush=True,
        )
        await _disconnect(one, tasks)

        # 2. Three replicas; agents spread, each with the other two as fallbacks.
        b, c = replica("b"), replica("c")
        order = [[gw(a), gw(b), gw(c)], [gw(b), gw(c), gw(a)], [gw(c), gw(a), gw(b)]]
        three = _agents(names, home / "certs", ca_dir / "ca.crt", order)
        tasks, conn3_s = await _connect(three)
        await asyncio.sleep(0.5)
        held3 = await _held([a, b, c])
        base3, p50_3, p99_3, got3 = await _fanout_stats(http, three)
        print(
            f"3 replicas: {sum(held3)}/{n} connections held (a/b/c {'/'.join(map(str, held3))}; "
            f"registered in {conn3_s:.1f} s)",
            flush=True,
        )
        print(
            f"3 replicas: fan-out to {got3}/{n} submitted on A: p50 {p50_3:.0f} ms, p99 {p99_3:.0f} ms "
            f"(1 node {base3:.1f} ms); p99 ratio to 1 replica {p99_3 / p99_1:.2f}",
            flush=True,
        )

        # 3. Failover: B's agents hold their results (in flight), B is killed -9.
        on_b = [x for x in three if x.url == gw(b) and x.registered.is_set()]
        for x in on_b:
            x.hold = True
        r = await http.post("/fleet/actions", json={"nodes": names, "spec": {"command": "true"}})
        r.raise_for_status()
        ids = {row["node"]: row["id"] for row in r.json()}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(ids[x.name] in x.executed for x in three):
            await asyncio.sleep(0.01)
        executed = sum(ids[x.name] in x.executed for x in three)
        t_kill = time.monotonic()
        b.kill9()
        for x in on_b:
            x.hold = False  # their next connection delivers the outbox
        await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*(x.registered.wait() for x in on_b)), 300)
        reattach_s = time.monotonic() - t_kill
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(ids[x.name] in x.acked_at for x in three):
            await asyncio.sleep(0.02)
        accounted_s = time.monotonic() - t_kill
        still_open = await _open_count(url, list(ids.values()))
        dups = sum(cnt - 1 for x in three for cnt in x.executed.values() if cnt > 1)
        resent = sum(x.resent for x in on_b)
        print(
            f"failover: kill -9 of B with {len(on_b)} agents and {len(on_b)} results in flight "
            f"({executed}/{n} executed): all re-attached in {reattach_s:.2f} s, every result stored "
            f"in {accounted_s:.2f} s; open actions left {still_open}, duplicate executions {dups}, "
            f"resent by the new holder {resent}",
            flush=True,
        )
        await _disconnect(three, tasks)
        await http.aclose()
    finally:
        for d in replicas:
            d.stop()
        nats.destroy()
        pg.destroy()
    print(f"# wall time {time.monotonic() - t_run:.0f} s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=200, help="simulated agents (default 200)")
    ap.add_argument("--tmp", default=None, help="folder for the run's state (default: system temp)")
    asyncio.run(main(ap.parse_args()))
