"""Agent loop overhead and token latency through a real ``fazaid`` (scripted provider).

1. Loop overhead: N iterations of the scripted action ``{"action":"shell","command":"true"}`` through
   the daemon (HTTP + SSE, every event stored in SQLite before it is published) vs N bare
   ``bash -c true`` in the same run. Target ratio ≤ 1.2 (issue 12). Also prints FazAI's own cost per
   iteration in ms (through minus bare). Also prints the event-log transactions per
   iteration (``fazai_store_commits`` on /metrics, read before the warm-up and after the run).
2. Token latency, daemon → client: the time from a token event's creation (its ``ts``) to its arrival
   at an SSE client, p50 / p99 over every token of the run. Target p99 ≤ 20 ms. The tokens come from
   the scripted provider (as fast as it can emit: a worst case for queueing), not the model worker.

Usage: .venv/bin/python bench/bench_agent.py [--iterations 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

from fazai.targets.local import shell_argv

REPO = Path(__file__).resolve().parents[1]


def start_daemon(home: Path, script: list[str], iterations: int) -> tuple[subprocess.Popen[str], int]:
    (home / "script.json").write_text(json.dumps(script))
    cfg = home / "fazai.toml"
    cfg.write_text(
        f"""
[paths]
state_dir = "{home / "state"}"
runtime_dir = "{home / "run"}"
[ai_provider]
provider = "scripted"
script = "{home / "script.json"}"
[agent]
max_iterations = {iterations + 5}
# The per-goal context (system facts, KB search: ~2 s) is not loop overhead; docs/knowledge.md has it.
facts_budget_s = 0
[kb]
enabled = false
[daemon]
log_level = "info"
"""
    )
    env = {**os.environ, "FAZAI_CONFIG": str(cfg)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fazai.server", "--port", "0"],
        env=env,
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    port = 0
    assert proc.stderr
    said: list[str] = []
    for line in proc.stderr:
        said.append(line)
        if '"listening"' in line:
            port = json.loads(line)["port"]
            break
    if not port:  # a refused config, a port in use: say what the daemon said, not a missing token
        proc.wait(10)
        sys.exit(f"fazaid did not start (exit {proc.returncode}):\n{''.join(said[-20:])}")
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, port


def sse(resp: httpx.Response):  # type: ignore[no-untyped-def]
    name, data = "message", []
    for line in resp.iter_lines():
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def store_commits(c: httpx.Client) -> float:
    """The daemon's count of event-log transactions (``fazai_store_commits`` on /metrics)."""
    for line in c.get("/metrics").text.splitlines():
        if line.startswith("fazai_store_commits "):
            return float(line.split()[1])
    return float("nan")


def ts_of(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=100)
    args = ap.parse_args()
    n = args.iterations
    if not 1 <= n <= 995:  # agent.max_iterations allows 1000, and the run needs n + 5
        ap.error("--iterations must be between 1 and 995 (agent.max_iterations is at most 1000)")

    def bare_run() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            subprocess.run(shell_argv("true"), check=True)
        return time.perf_counter() - t0

    # Baseline: the bare commands, measured in this same run, before and after (a shared machine's
    # load drifts; the mean of both brackets the daemon run).
    bare_before = bare_run()

    # Distinct commands: the loop does not re-run a verbatim repeat (it would skip the work measured).
    # A warm-up session first (one shell action, then done), untimed: the daemon imports the agent
    # loop on its first run (~1 s), a one-off cost that is not per-iteration overhead.
    done = json.dumps({"action": "done", "answer": "ok", "status": "success"})
    script = [json.dumps({"action": "shell", "command": "true warm-up"}), done]
    script += [json.dumps({"action": "shell", "command": f"true {i}"}) for i in range(n)]
    script.append(done)
    with tempfile.TemporaryDirectory(prefix="fazai-bench-") as tmp:
        proc, port = start_daemon(Path(tmp), script, n)
        try:
            home = Path(tmp)
            token = (home / "state" / "daemon.token").read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            latencies: list[float] = []
            approvals = 0
            counts: dict[str, int] = {}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=None) as c:
                # Read before the warm-up: a /metrics request just before the timed run showed up in
                # its token latency p99 (40-58 ms instead of 6-14: a GC pass of the daemon, likely).
                commits_before = store_commits(c)
                with c.stream("POST", "/agent/generate", json={"goal": "warm-up"}) as r:
                    for name, _ in sse(r):
                        if name != "message":
                            break
                t0 = time.perf_counter()
                with c.stream("POST", "/agent/generate", json={"goal": "bench"}) as r:
                    for name, ev in sse(r):
                        now = time.time()
                        if name != "message":
                            status = ev.get("status")
                            break
                        counts[ev["kind"]] = counts.get(ev["kind"], 0) + 1
                        if ev["kind"] == "token":
                            latencies.append((now - ts_of(ev["ts"])) * 1000)
                        elif ev["kind"] == "approval_required":
                            approvals += 1
                            body = {
                                "session": ev["session"],
                                "action": ev["data"]["action"],
                                "approved": True,
                            }
                            c.post("/agent/reply", json=body)
                through = time.perf_counter() - t0
                commits = store_commits(c) - commits_before
        finally:
            proc.terminate()
            proc.wait(10)

    bare_after = bare_run()
    bare = (bare_before + bare_after) / 2
    ratio = through / bare
    print(f"iterations: {n}  run status: {status}  events: {sum(counts.values())} {counts}")
    if approvals:
        print(
            f"note: {approvals} approvals answered over HTTP (no safety policy installed: every command asks)"
        )
    print(
        f"bare bash -c true:   {bare * 1000 / n:7.2f} ms/iteration (before {bare_before:.2f} s, "
        f"after {bare_after:.2f} s)"
    )
    print(f"through fazaid:       {through * 1000 / n:7.2f} ms/iteration ({through:.2f} s); "
          f"{commits / (n + 1):.2f} store commits/iteration (warm-up session included)")  # fmt: skip
    own = (through - bare) * 1000 / n
    print(f"FazAI's own cost:     {own:7.2f} ms/iteration (through fazaid minus bare)")
    print(f"loop overhead ratio:  {ratio:.2f}  (target <= 1.2) {'OK' if ratio <= 1.2 else 'OVER'}")
    if latencies:
        p50, p99 = statistics.median(latencies), pct(latencies, 99)
        verdict = "OK" if p99 <= 20 else "OVER"
        print(
            f"token latency daemon->client (scripted provider, ms-resolution ts): p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms over {len(latencies)} tokens (target p99 <= 20 ms) {verdict}"
        )


if __name__ == "__main__":
    main()
