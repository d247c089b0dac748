"""Events per second end to end, through one replica and across two (PostgreSQL + NATS JetStream).

    .venv/bin/python bench/bench_scale.py [--tokens 3000] [--runs 2]

Starts a throwaway PostgreSQL and ``nats-server -js`` (Debian's binaries, loopback, temp dirs) and
real ``fazaid`` processes with the scripted provider, whose one answer streams ``--tokens`` token
events (3 characters each). Each run starts a session on replica A and measures, from the request
that starts it to the end marker, the events an SSE follower receives:

* through 1 replica (the baseline): the follower on A itself (in-process fan-out);
* across 2 replicas: the follower on B, fed through NATS JetStream (holes filled from PostgreSQL).

Both run on the same two replicas, alternated, so the store, the bus and the machine's load are the
same for both; A publishes to NATS in both (the cost of being one of several replicas).

Prints events/s for each and the ratio to the baseline, measured in the same run. Ports come from
``$FAZAI_TEST_PORTS`` when set (as in the tests), else the kernel's free ports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from daemon_harness import Daemon, sse_messages  # noqa: E402
from fazai.store.db import create_engine, migrate  # noqa: E402
from services import Nats, Postgres, create_database, free_port  # noqa: E402


def _script(tokens: int, runs: int) -> list[str]:
    # One turn per run: a long reasoning (streamed as token events), then `done`.
    reasoning = "x" * (3 * tokens)
    done = json.dumps({"action": "done", "answer": "ok", "status": "success"})
    return [f"{reasoning}\n{done}"] * runs


def _replica(home: Path, name: str, store: str, bus: str | None, script: list[str]) -> Daemon:
    extra = f'database_url = "{store}"\nreplica_id = "{name}"\n'
    if bus:
        extra += f'[bus]\nurl = "{bus}"\n'
    return Daemon(home / name, script, extra, port=free_port()).start(timeout=120)


def _one_run(runner: Daemon, follower: Daemon) -> tuple[float, int]:
    """(seconds, events the follower got) from starting a session on ``runner`` to its end."""
    sid_ready = threading.Event()
    box: dict[str, object] = {}

    def drive() -> None:
        with runner.client() as c, c.stream("POST", "/agent/generate", json={"goal": "bench"}) as r:
            box["sid"] = r.headers["X-Session-Id"]
            sid_ready.set()
            for _ in sse_messages(r):  # the runner's own client reads along, like a CLI would
                pass

    t0 = time.perf_counter()
    t = threading.Thread(target=drive, daemon=True)
    t.start()
    if not sid_ready.wait(60):
        raise RuntimeError("the session did not start")
    n, end = 0, None
    with follower.client() as c, c.stream("GET", f"/agent/sessions/{box['sid']}/events") as r:
        for name, data, _ in sse_messages(r):
            if name != "message":
                end = data
                break
            n += 1
    elapsed = time.perf_counter() - t0
    t.join(30)
    if not end or end.get("status") != "done":
        raise RuntimeError(f"the run did not finish well: {end}")
    return elapsed, n


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=1000, help="token events per session (default 1000)")
    ap.add_argument("--runs", type=int, default=3, help="sessions per setup (default 3)")
    args = ap.parse_args()

    import asyncio
    import os

    # One long turn: let the scripted model stream all of it (the replicas inherit the environment).
    os.environ["FAZAI_AI_PROVIDER__MAX_TOKENS"] = str(args.tokens * 2 + 100)
    pg = Postgres().start()
    nats = Nats().start()
    started: list[Daemon] = []
    try:
        with tempfile.TemporaryDirectory(prefix="fazai-bench-scale-") as tmp:
            home = Path(tmp)
            url = create_database(pg.url, "bench_scale")
            asyncio.run(_migrate(url))
            a = _replica(home, "a", url, nats.url, _script(args.tokens, 2 * args.runs + 1))
            started.append(a)
            b = _replica(home, "b", url, nats.url, ["unused"])
            started.append(b)
            _one_run(a, b)  # warm-up (first-use imports and connections), not counted
            results: dict[str, list[float]] = {"one": [], "two": []}
            # Alternated, so a change in the machine's load hits both setups alike.
            for _ in range(args.runs):
                for key, follower, label in (("one", a, "through 1 replica"), ("two", b, "A -> B")):
                    secs, n = _one_run(a, follower)
                    results[key].append(n / secs)
                    print(f"  {label}: {n} events in {secs:.2f} s = {n / secs:,.0f} events/s", flush=True)
            one = statistics.median(results["one"])
            two = statistics.median(results["two"])
            print(
                f"events/s end to end (median of {args.runs}): through 1 replica {one:,.0f}, "
                f"across 2 replicas (run on A, followed on B) {two:,.0f}"
            )
            print(f"ratio 2 replicas / 1 replica: {two / one:.2f}")
    finally:
        for d in started:
            d.stop()
        nats.destroy()
        pg.destroy()


if __name__ == "__main__":
    main()
