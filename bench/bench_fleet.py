"""Fleet gateway benchmark: N simulated agents (real protocol, real mTLS) against one real fazaid.

    .venv/bin/python bench/bench_fleet.py                 # 300 agents, < 60 s on 2 cores
    .venv/bin/python bench/bench_fleet.py --agents 10000  # the issue's goal (~8 min here, --no-storm)

The simulated agents are asyncio clients in this process; each has its own certificate from the
fleet CA (issued through the registry on the same store, as `fazai nodes` does; a sample also enrolls
over the wire to time real enrollment). They answer ``command.exec`` at once without forking (the
point is the gateway, not bash) and keep executed ids and an outbox like the real agent.

Measured in one run, the first ``--baseline`` agents (100) on their own, then all N, with ratios:
- connections held; hello→ready and connect (TCP+TLS+upgrade+hello) p50/p99; connect rate;
- fazaid's memory per connection (RSS after − RSS before, over the connections added);
- fan-out of a trivial command to all: p50/p99/max from POST /fleet/actions to each result stored
  (the agent got the server's durable ack), against 1 node and the baseline group;
- heartbeat CPU: fazaid CPU per 1,000 heartbeats (all agents beating every second);
- reconnect storm: all connections drop at once with a result held and come back (full jitter):
  time to full re-registration, results stored, actions resent by the server, duplicate executions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import httpx  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, WebSocketException  # noqa: E402

from fazai import wire  # noqa: E402
from fazai.fleet import ca as ca_mod  # noqa: E402
from fazai.fleet.registry import Registry  # noqa: E402
from fazai.node.identity import Identity, enroll  # noqa: E402
from fazai.store import Store  # noqa: E402


def free_port(start: int) -> int:
    for port in range(start, start + 100):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {start}-{start + 99}: pass --port-base")


def proc_stats(pid: int) -> tuple[int, float]:
    """(RSS bytes, CPU seconds) of a process."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


class SimAgent:
    """One simulated agent: real TLS, real frames, credits, executed ids and an outbox."""

    def __init__(self, name: str, ctx: ssl.SSLContext, url: str, *, more_urls: list[str] | None = None):
        self.name = name
        self.ctx = ctx
        self.url = url
        self.urls = [url, *(more_urls or [])]  # dialled in turn when a connection fails (replicas)
        self.turn = 0
        self.executed: dict[str, int] = {}
        self.outbox: dict[str, str] = {}  # frame id -> frame, insertion-ordered
        self.acked_at: dict[str, float] = {}  # action -> when the server acked its exit
        self.frame_action: dict[str, str] = {}
        self.resent = 0
        self.ws = None
        self.registered = asyncio.Event()
        self.gate: asyncio.Semaphore | None = None  # bounds handshakes in flight during a ramp
        self.hello_s: float | None = None  # hello sent → the server's accepting ack, first connection
        self.connect_s: float | None = None  # TCP + TLS + upgrade + hello → ack, first connection
        self.hold = False  # keep results in the outbox (to be caught by the storm)
        self.beat_s = 0.0
        self.stop = False

    async def run(self) -> None:
        attempt = 0
        while not self.stop:
            try:
                await self._session()
                attempt = 0
            except (OSError, ConnectionClosed, WebSocketException, TimeoutError, wire.WireError):
                pass
            if self.stop:
                return
            self.turn += 1
            self.url = self.urls[self.turn % len(self.urls)]
            # Full jitter growing once per round of the list, as fazai-agent (node/conn.py).
            await asyncio.sleep(random.uniform(0, min(2.0, 0.1 * 2 ** (attempt // len(self.urls)))))
            attempt += 1

    async def _open(self) -> tuple[object, float, float]:
        t0 = time.monotonic()
        ws = await connect(
            self.url,
            ssl=self.ctx,
            compression=None,
            open_timeout=120,
            proxy=None,
            ping_interval=None,
            max_size=wire.MAX_FRAME_BYTES,
        )
        try:
            hello = wire.Hello(agent_version="bench", pending=len(self.outbox))
            t1 = time.monotonic()
            await ws.send(wire.frame("hello", hello, node=self.name))
            env, spec = wire.parse(await asyncio.wait_for(ws.recv(), 120))
        except BaseException:
            await ws.close()
            raise
        if env.kind != "ack":
            await ws.close()
            raise wire.WireError(f"refused: {spec}")
        now = time.monotonic()
        return ws, now - t1, now - t0

    async def _session(self) -> None:
        if self.gate is not None:
            async with self.gate:
                ws, hello_s, connect_s = await self._open()
        else:
            ws, hello_s, connect_s = await self._open()
        async with ws:
            self.ws = ws
            if self.hello_s is None:
                self.hello_s, self.connect_s = hello_s, connect_s
            self.registered.set()
            for text in list(self.outbox.values()):  # redeliver in order (the window is 64 > 1)
                await ws.send(text)
            beat = asyncio.create_task(self._beat(ws))
            try:
                async for raw in ws:
                    env, spec = wire.parse(raw)
                    if env.kind == "ack":
                        now = time.monotonic()
                        for fid in spec.ids:
                            self.outbox.pop(fid, None)
                            aid = self.frame_action.pop(fid, None)
                            if aid is not None:
                                self.acked_at.setdefault(aid, now)
                    elif env.kind == "command.exec":
                        if env.id in self.executed:
                            self.resent += 1  # exactly-once: never run twice; the outbox has the result
                            continue
                        self.executed[env.id] = self.executed.get(env.id, 0) + 1
                        fid = wire.new_id("m")
                        text = wire.frame(
                            "command.exit", wire.CommandExit(action=env.id, exit_code=0), id=fid
                        )
                        self.outbox[fid] = text
                        self.frame_action[fid] = env.id
                        if not self.hold:
                            await ws.send(text)
            finally:
                beat.cancel()
                self.ws = None
                self.registered.clear()

    async def _beat(self, ws) -> None:
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            while True:
                if self.beat_s:
                    await asyncio.sleep(self.beat_s * random.uniform(0.9, 1.1))
                    await ws.send(wire.frame("heartbeat", wire.Heartbeat(load1=0.1), node=self.name))
                else:
                    await asyncio.sleep(0.5)

    def drop(self) -> None:
        if self.ws is not None:
            self.ws.transport.abort()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


async def issue_certs(db_url: str, state: Path, n: int, folder: Path) -> None:
    """Certificates for the simulated nodes, signed by the fleet CA and recorded in one transaction
    (per-node enrollment is timed separately on a sample; 10,000 of them would dominate the run)."""
    from sqlalchemy import insert

    from fazai.fleet.schema import fleet_agents, fleet_certs
    from fazai.protocol import utcnow_iso

    store = await Store.open(db_url)
    ca = ca_mod.CertificateAuthority.load_or_create(state / "fleet")
    folder.mkdir(parents=True, exist_ok=True)
    agents, certs, now = [], [], utcnow_iso()
    for i in range(n):
        name = f"sim-{i:05d}"
        key = ca_mod.new_key()
        issued = ca.sign_node(ca_mod.make_csr(key, name), name, "bench", 30)
        ca_mod.write_private(folder / f"{name}.key", ca_mod.key_pem(key))
        (folder / f"{name}.crt").write_text(issued.pem)
        agents.append({"name": name, "site": "bench", "status": "active", "enrolled_at": now})
        certs.append(
            {
                "serial": issued.serial,
                "node": name,
                "not_before": now,
                "not_after": issued.not_after.isoformat(),
                "issued_at": now,
            }
        )
    async with store.engine.begin() as conn:
        await conn.execute(insert(fleet_agents), agents)
        await conn.execute(insert(fleet_certs), certs)
    await store.close()


async def fanout(http: httpx.AsyncClient, agents: list[SimAgent]) -> tuple[list[float], list[str]]:
    t0 = time.monotonic()
    r = await http.post(
        "/fleet/actions", json={"nodes": [a.name for a in agents], "spec": {"command": "true"}}
    )
    r.raise_for_status()
    ids = {row["node"]: row["id"] for row in r.json()}
    by_name = {a.name: a for a in agents}
    deadline = time.monotonic() + max(120, len(agents) * 0.05)
    while time.monotonic() < deadline:
        if all(ids[n] in by_name[n].acked_at for n in ids):
            break
        await asyncio.sleep(0.01)
    lat = [by_name[n].acked_at[aid] - t0 for n, aid in ids.items() if aid in by_name[n].acked_at]
    return lat, list(ids.values())


async def main(args: argparse.Namespace) -> None:
    import asyncio.sslproto

    # Same setting as the gateway (see fleet/gateway.py): a 32 KiB TLS read buffer per connection.
    asyncio.sslproto.SSLProtocol.max_size = 32 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.agents * 2 + 1024)), hard))
    home = Path(tempfile.mkdtemp(prefix="bench-fleet-", dir=args.tmp))
    state = home / "state"
    gw, en, http_port = free_port(args.port_base), 0, 0
    en = free_port(gw + 1)
    http_port = free_port(en + 1)
    cfg = home / "fazai.toml"
    cfg.write_text(f"""
[paths]
state_dir = "{state}"
runtime_dir = "{home / "run"}"
[kb]
enabled = false
[daemon]
port = {http_port}
log_level = "warning"
[fleet]
enabled = true
gateway_port = {gw}
enroll_port = {en}
heartbeat_s = 1
credits = 64
""")
    env = {**os.environ, "FAZAI_CONFIG": str(cfg), "PYTHONUNBUFFERED": "1"}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "fazai.server"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=open(home / "fazaid.log", "w"),
    )
    try:
        base = f"http://127.0.0.1:{http_port}"
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            await asyncio.sleep(0.1)
        else:
            raise SystemExit("fazaid did not start: " + (home / "fazaid.log").read_text()[-2000:])
        token = (state / "daemon.token").read_text().strip()
        http = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        db_url = f"sqlite+aiosqlite:///{state / 'fazai.db'}"
        n = args.agents
        print(f"# bench_fleet: {n} simulated agents, 1 fazaid (pid {daemon.pid}), {os.cpu_count()} CPUs")

        # Real enrollment over the wire for a sample.
        store = await Store.open(db_url)
        reg = Registry(store.engine, ca_mod.CertificateAuthority.load_or_create(state / "fleet"))
        sample = min(5, n)
        t = time.monotonic()
        for i in range(sample):
            tok, _, _ = await reg.create_token("bench", 600)
            await enroll(Identity(home / f"enr-{i}"), f"wss://127.0.0.1:{en}", tok, f"enr-{i:03d}")
        enroll_ms = (time.monotonic() - t) / sample * 1000
        await store.close()
        t = time.monotonic()
        await issue_certs(db_url, state, n, home / "certs")
        issue_ms = (time.monotonic() - t) / n * 1000
        print(
            f"enrollment over the wire: {enroll_ms:.1f} ms/node ({sample} nodes); "
            f"bulk issue for the simulated nodes: {issue_ms:.1f} ms/node"
        )

        agents = []
        t = time.monotonic()
        for i in range(n):
            name = f"sim-{i:05d}"
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(cafile=str(state / "fleet" / "ca.crt"))
            ctx.load_cert_chain(home / "certs" / f"{name}.crt", home / "certs" / f"{name}.key")
            agents.append(SimAgent(name, ctx, f"wss://127.0.0.1:{gw}"))
        print(f"client TLS contexts: {(time.monotonic() - t) / n * 1000:.2f} ms each")

        gate = asyncio.Semaphore(args.ramp)  # handshakes in flight while ramping up
        tasks: list[asyncio.Task[None]] = []

        async def ramp(group: list[SimAgent]) -> dict[str, float]:
            """Connect ``group`` (at most args.ramp handshakes at once); its connection figures."""
            rss_before, _ = proc_stats(daemon.pid)
            t0 = time.monotonic()
            for a in group:
                a.gate = gate
                tasks.append(asyncio.create_task(a.run()))
            await asyncio.wait_for(asyncio.gather(*(a.registered.wait() for a in group)), args.ramp_timeout)
            wall = time.monotonic() - t0
            for a in group:
                a.gate = None  # reconnects (the storm) are not paced: full jitter only
            await asyncio.sleep(1)
            rss_after, _ = proc_stats(daemon.pid)
            hello = [a.hello_s for a in group if a.hello_s is not None]
            conn = [a.connect_s for a in group if a.connect_s is not None]
            return {
                "n": len(group), "wall_s": wall, "rate": len(group) / wall,
                "hello_p50": pct(hello, 50) * 1000, "hello_p99": pct(hello, 99) * 1000,
                "conn_p50": pct(conn, 50) * 1000, "conn_p99": pct(conn, 99) * 1000,
                "kib_per_conn": (rss_after - rss_before) / len(group) / 1024, "rss": rss_after,
            }  # fmt: skip

        def show(tag: str, c: dict[str, float]) -> None:
            print(
                f"{tag}: {int(c['n'])} connected in {c['wall_s']:.1f} s ({c['rate']:.0f}/s, {args.ramp} "
                f"handshakes at once); hello→ready p50 {c['hello_p50']:.1f} ms p99 {c['hello_p99']:.1f} ms; "
                f"connect (TCP+TLS+upgrade+hello) p50 {c['conn_p50']:.0f} ms p99 {c['conn_p99']:.0f} ms; "
                f"fazaid +{c['kib_per_conn']:.1f} KiB per connection"
            )

        async def fan(group: list[SimAgent]) -> tuple[float, float, float, int]:
            lat, _ = await fanout(http, group)
            return pct(lat, 50) * 1000, pct(lat, 99) * 1000, max(lat) * 1000 if lat else 0.0, len(lat)

        await asyncio.sleep(1)
        rss0, _ = proc_stats(daemon.pid)
        print(f"fazaid RSS idle: {rss0 / 2**20:.1f} MiB")
        nb = min(args.baseline, n)
        base = await ramp(agents[:nb])
        show(f"baseline ({nb} agents)", base)
        single = []
        for _ in range(5):
            lat, _ = await fanout(http, agents[:1])
            single += lat
        one_ms = statistics.median(single) * 1000
        b50, b99, bmax, bgot = await fan(agents[:nb])
        if not bgot:
            raise SystemExit("no fan-out result came back: see fazaid.log in " + str(home))
        print(
            f"baseline fan-out of `true`: 1 node {one_ms:.1f} ms; {bgot}/{nb} nodes p50 {b50:.0f} ms "
            f"p99 {b99:.0f} ms all in {bmax:.0f} ms"
        )
        if n > nb:
            rest = await ramp(agents[nb:])
            show(f"the other {n - nb}", rest)
        await asyncio.sleep(1)
        held = len((await http.get("/fleet/agents")).json()["connected"])
        rss1, _ = proc_stats(daemon.pid)
        per_conn = (rss1 - rss0) / n / 1024
        print(
            f"connections held: {held} of {n}; fazaid RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB, "
            f"{per_conn:.1f} KiB per connection ({per_conn / base['kib_per_conn']:.2f}x the baseline's)"
        )
        f50, f99, fmax, fgot = await fan(agents)
        if not fgot:
            raise SystemExit("no fan-out result came back: see fazaid.log in " + str(home))
        print(
            f"fan-out of `true` to {fgot}/{n} nodes: p50 {f50:.0f} ms, p99 {f99:.0f} ms, "
            f"all in {fmax:.0f} ms "
            f"({f99 / b99:.1f}x the {nb}-node p99 for {n / nb:.0f}x the nodes; "
            f"{fmax / fgot:.2f} ms per node vs {bmax / bgot:.2f} [baseline])"
        )
        if n > nb:
            print(
                f"hello→ready at {n}: p99 {rest['hello_p99'] / base['hello_p99']:.1f}x the baseline's; "
                f"connect rate {rest['rate'] / base['rate']:.2f}x"
            )

        # Heartbeat CPU: idle window (no heartbeats) vs every agent beating each second.
        # The fan-out's last writes settle first: until fazaid uses < 5 % of a CPU for a second.
        for _ in range(30):
            _, p0 = proc_stats(daemon.pid)
            await asyncio.sleep(1)
            if proc_stats(daemon.pid)[1] - p0 < 0.05:
                break
        _, c0 = proc_stats(daemon.pid)
        await asyncio.sleep(2)
        _, c1 = proc_stats(daemon.pid)
        for a in agents:
            a.beat_s = 1.0
        await asyncio.sleep(1)
        _, c2 = proc_stats(daemon.pid)
        await asyncio.sleep(2)
        _, c3 = proc_stats(daemon.pid)
        for a in agents:
            a.beat_s = 0.0
        idle_cpu = (c1 - c0) / 2
        beat_cpu = (c3 - c2) / 2
        print(
            f"heartbeats: {n}/s cost fazaid {beat_cpu * 100:.1f} % of a CPU (idle connections "
            f"{idle_cpu * 100:.1f} % [baseline]); {max(beat_cpu - idle_cpu, 0) / n * 1000 * 1000:.1f} ms CPU "
            "per 1,000 heartbeats"
        )

        # Reconnect storm: results held in the outboxes, every connection dropped at once.
        async def storm() -> None:
            for a in agents:
                a.hold = True
            r = await http.post(
                "/fleet/actions", json={"nodes": [a.name for a in agents], "spec": {"command": "true"}}
            )
            storm_ids = {row["node"]: row["id"] for row in r.json()}
            by_name = {a.name: a for a in agents}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(storm_ids[a.name] in a.executed for a in agents):
                await asyncio.sleep(0.01)
            t = time.monotonic()
            for a in agents:
                a.hold = False
                a.drop()
            await asyncio.sleep(0.05)
            await asyncio.wait_for(asyncio.gather(*(a.registered.wait() for a in agents)), 600)
            rereg_s = time.monotonic() - t
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not all(
                storm_ids[n_] in by_name[n_].acked_at for n_ in storm_ids
            ):
                await asyncio.sleep(0.02)
            all_in_s = time.monotonic() - t
            stored = sum(storm_ids[n_] in by_name[n_].acked_at for n_ in storm_ids)
            dups = sum(c - 1 for a in agents for c in a.executed.values() if c > 1)
            resent = sum(a.resent for a in agents)
            counters = (await http.get("/fleet/agents")).json()["counters"]
            print(
                f"reconnect storm: {n} dropped at once, all re-registered in {rereg_s:.1f} s, "
                f"{stored}/{n} held results stored in {all_in_s:.1f} s; actions resent by the server "
                f"{resent}, duplicate executions {dups}; server counters {json.dumps(counters)}"
            )

        if args.no_storm:
            print("reconnect storm: skipped (--no-storm)")
        else:
            await storm()
        for a in agents:
            a.stop = True
            a.drop()
        for tk in tasks:
            tk.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await http.aclose()
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=300, help="simulated agents (default 300, < 60 s)")
    ap.add_argument("--baseline", type=int, default=100, help="agents of the baseline (default 100)")
    ap.add_argument("--ramp", type=int, default=200, help="handshakes in flight while connecting")
    ap.add_argument("--ramp-timeout", type=float, default=1800, help="seconds allowed to connect all")
    ap.add_argument("--no-storm", action="store_true", help="skip the reconnect storm")
    ap.add_argument("--port-base", type=int, default=42380, help="first port tried (3 free ones taken)")
    ap.add_argument("--tmp", default=None, help="folder for the run's state (default: system temp)")
    asyncio.run(main(ap.parse_args()))
