"""Alert → block latency and sustained EVE ingest, against a bare append + parse baseline.

    .venv/bin/python bench/bench_playbooks.py [--alerts 20] [--rate 1000] [--seconds 3] [--burst 10000]

1. Latency: an EVE alert line appended to an eve.json that fazaid's automation follows → its source
   address present in the OPNsense simulator's ``fazai_block`` alias (over real HTTP) and in an nft set
   inside a network namespace (``unshare -n``). One alert at a time; p50 / p99 / max. Goal ≤ 1 s.
2. Sustained ingest: ``--rate`` lines/s appended for ``--seconds`` (50 sources, one signature that no
   playbook matches, so dedup folds most lines); the follower must keep up. Reported: how far behind
   the ingest finished, against the same writer read by a bare follow + ``json.loads`` + parse.
3. Burst: ``--burst`` lines appended at once; lines/s through ingest (parse + dedup + one store
   transaction) against lines/s through the bare parse.
Everything runs in this process except the simulator's server thread and the nft/nsenter commands.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))  # the OPNsense simulator (a test double of the appliance)

from fazai.config import Settings  # noqa: E402
from fazai.opnsense.alerts import parse_eve_record  # noqa: E402
from fazai.opnsense.firewall import BLOCK_ALIAS  # noqa: E402
from fazai.opnsense.store import FirewallEntry, FirewallStore  # noqa: E402
from fazai.sessions.automation import Automation  # noqa: E402
from fazai.sessions.manager import SessionManager  # noqa: E402
from fazai.sessions.playbook_loop import PlaybookLoop, build_env  # noqa: E402
from fazai.store import Store  # noqa: E402
from fazai.telemetry import follow_lines  # noqa: E402
from opnsense_sim import Simulator, serve  # noqa: E402
from opnsense_sim.eve import SSH_SCAN_ALERT  # noqa: E402
from opnsense_sim.keys import KEY, SECRET, install_keys  # noqa: E402

PLAYBOOK = """
name: ssh-scan
trigger: {alert: {signature_id: 2001219}}
rate_limit: {max_runs: 100000, per: 1s}
steps:
  - id: fw
    block_ip: {}
  - id: nodes
    nft_block: {nodes: [web1]}
"""


def line(src: str, sid: int = 2001219, ts: str | None = None) -> str:
    rec = copy.deepcopy(SSH_SCAN_ALERT)
    rec["src_ip"] = src
    rec["alert"]["signature_id"] = sid
    rec["timestamp"] = ts or time.strftime("%Y-%m-%dT%H:%M:%S.000000+0000", time.gmtime())
    return json.dumps(rec) + "\n"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def nft_has(netns: str, ip: str) -> bool:
    r = subprocess.run(
        ["nsenter", f"--net={netns}", "nft", "list", "set", "inet", "fazai", "blocklist"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return ip in r.stdout


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def phases(auto: Automation, appended: float) -> dict[str, float]:
    """Where the time of the newest run went, from its stored events' timestamps (ms)."""
    (rec,) = await auto.manager.store.list_sessions(limit=1)
    evs = await auto.manager.store.events(rec.id)
    ok = {e.data["step"]: _epoch(e.ts) for e in evs if e.kind == "step" and e.data.get("status") == "ok"}
    started = _epoch(evs[0].ts)
    return {
        "append→session": (started - appended) * 1000,
        "block_ip": (ok["fw"] - started) * 1000,
        "nft_block": (ok["nodes"] - ok["fw"]) * 1000,
    }


async def latency(
    auto: Automation, sim: Simulator, eve: Path, netns: str, n: int
) -> tuple[list[float], list[dict[str, float]]]:
    out, parts = [], []
    for i in range(n):
        ip = f"198.51.{100 + i // 250}.{i % 250 + 1}"
        wall = time.time()
        t0 = time.perf_counter()
        with eve.open("a") as f:
            f.write(line(ip))
        while not (
            ip in sim.pf_tables.get(BLOCK_ALIAS, ()) or f"{ip}/32" in sim.pf_tables.get(BLOCK_ALIAS, ())
        ):
            await asyncio.sleep(0.002)
            if time.perf_counter() - t0 > 30:
                raise SystemExit(f"alert {i}: {ip} never reached the firewall alias")
        while not await asyncio.to_thread(nft_has, netns, ip):
            await asyncio.sleep(0.002)
            if time.perf_counter() - t0 > 30:
                raise SystemExit(f"alert {i}: {ip} never reached the nft set")
        out.append(time.perf_counter() - t0)
        # Let the run finish (its last event stored) before the next one starts.
        while auto.manager.runs:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        parts.append(await phases(auto, wall))
    return out, parts


async def write_at(path: Path, rate: int, seconds: float, sid: int) -> int:
    """Append ``rate`` lines/s in 10 ms batches; how many were written."""
    per_tick, total = max(1, rate // 100), int(rate * seconds)
    written, start = 0, time.perf_counter()
    with path.open("a") as f:
        while written < total:
            k = min(per_tick, total - written)
            f.write("".join(line(f"203.0.113.{(written + j) % 50 + 1}", sid) for j in range(k)))
            f.flush()
            written += k
            delay = start + written / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
    return written


async def sustained(
    auto: Automation, eve: Path, rate: int, seconds: float
) -> tuple[float, float, dict[str, int]]:
    source = f"eve:{eve}"
    ing = await auto.ingest(source)
    before = ing.counters.lines
    t0 = time.perf_counter()
    n = await write_at(eve, rate, seconds, sid=9_000_001)
    wrote_s = time.perf_counter() - t0
    while ing.counters.lines - before < n:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    await ing.flush()
    return wrote_s, time.perf_counter() - t0 - wrote_s, ing.counters.as_dict()


async def baseline_sustained(path: Path, rate: int, seconds: float) -> tuple[float, float]:
    """The same writer, read by a bare follow + json.loads + parse (no dedup, no store)."""
    stop = asyncio.Event()
    seen = [0]

    async def reader() -> None:
        async for batch in follow_lines(path, poll_s=0.05, stop=stop):
            for raw in batch:
                parse_eve_record(json.loads(raw))
            seen[0] += len(batch)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.1)
    t0 = time.perf_counter()
    n = await write_at(path, rate, seconds, sid=9_000_001)
    wrote_s = time.perf_counter() - t0
    while seen[0] < n:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    behind = time.perf_counter() - t0 - wrote_s
    stop.set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return wrote_s, behind


async def burst(auto: Automation, n: int) -> tuple[float, float]:
    lines = [line(f"192.0.2.{i % 200 + 1}", 9_000_002).rstrip("\n") for i in range(n)]
    t0 = time.perf_counter()
    for raw in lines:
        parse_eve_record(json.loads(raw))
    bare = time.perf_counter() - t0
    t0 = time.perf_counter()
    await auto.ingest_lines("burst", lines)
    return bare, time.perf_counter() - t0


async def main(args: argparse.Namespace) -> None:
    for tool in ("nft", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing (scripts/test-setup.sh installs nftables)")
    holder = subprocess.Popen(["unshare", "-n", "sleep", "3600"])  # noqa: ASYNC220 (returns at once)
    await asyncio.sleep(0.2)
    netns = f"/proc/{holder.pid}/ns/net"
    sim = Simulator("26.1")
    install_keys(sim)
    with tempfile.TemporaryDirectory() as tmp, serve(sim) as url:
        home = Path(tmp)
        (home / "playbooks").mkdir()
        (home / "playbooks" / "ssh.yaml").write_text(PLAYBOOK)
        FirewallStore(home / "state").add(FirewallEntry(name="main", url=url, timeout_s=5), KEY, SECRET)
        eve = home / "eve.json"
        eve.write_text("")
        settings = Settings.model_validate(
            {
                "paths": {"state_dir": str(home / "state"), "runtime_dir": str(home / "run")},
                "ai_provider": {"provider": "scripted"},
                "kb": {"enabled": False},
                "telemetry": {"eve_files": [str(eve)], "sample_interval_s": 0, "poll_s": 0.02},
                "playbooks": {"dir": str(home / "playbooks"), "detect_local": False,
                              "nodes": {"web1": {"kind": "netns", "netns": netns}}},
                "daemon": {"log_level": "warning"},
            }
        )  # fmt: skip
        from fazai.sessions import logs

        logs.configure("warning")
        store = await Store.open(settings.database_url)
        loop = PlaybookLoop(settings, build_env(settings))
        manager = SessionManager(settings, store, loop_fn=loop)
        await manager.start(recover=False)
        auto = Automation(settings, manager, loop)
        await auto.start()
        try:
            await asyncio.sleep(0.1)
            lat, parts = await latency(auto, sim, eve, netns, args.alerts)
            ms = [x * 1000 for x in lat]
            print(f"alert → alias + nft set, {len(lat)} alerts one at a time (file polled every 20 ms):")
            print(f"  p50 {statistics.median(ms):.0f} ms, p99 {pct(ms, 0.99):.0f} ms, max {max(ms):.0f} ms, "
                  f"first {ms[0]:.0f} ms (creates the alias + rule); goal ≤ 1000 ms")  # fmt: skip
            medians = {k: statistics.median(p[k] for p in parts[1:] or parts) for k in parts[0]}
            print(
                "  median per phase (after the first): "
                + ", ".join(f"{k} {v:.0f} ms" for k, v in medians.items())
            )
            b_wrote, b_behind = await baseline_sustained(home / "baseline.json", args.rate, args.seconds)
            wrote, behind, counters = await sustained(auto, eve, args.rate, args.seconds)
            print(f"sustained {args.rate} lines/s for {args.seconds:g}s (50 sources, dedup on):")
            print(f"  ingest done {behind * 1000:.0f} ms after the last append (writer {wrote:.2f}s); "
                  f"bare follow+parse {b_behind * 1000:.0f} ms after (writer {b_wrote:.2f}s)")  # fmt: skip
            print(f"  counters: {counters}")
            bare, ing = await burst(auto, args.burst)
            print(f"burst of {args.burst} lines: ingest {args.burst / ing:,.0f} lines/s, bare parse "
                  f"{args.burst / bare:,.0f} lines/s (ingest/bare time ratio {ing / bare:.2f})")  # fmt: skip
        finally:
            await auto.stop()
            await manager.stop()
            await loop.aclose()
            await store.close()
            holder.kill()
            holder.wait()


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=20, help="latency samples (alerts one at a time)")
    ap.add_argument("--rate", type=int, default=1000, help="sustained lines per second")
    ap.add_argument("--seconds", type=float, default=3.0, help="sustained duration")
    ap.add_argument("--burst", type=int, default=10000, help="lines appended at once")
    return ap.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_args()))
