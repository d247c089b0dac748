"""Loop overhead without the daemon: N scripted ``shell: true`` iterations through ``run_agent``
versus N bare ``bash -c true`` runs, measured in the same process, same machine, same moment.

    .venv/bin/python bench/bench_agent_loop.py [--n 100]

Prints both totals and the ratio (target ≤ 1.2 against ``bash -c``; the daemon's own benchmark adds
HTTP/SSE and storage).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time

from fazai.agent.deps import AgentDeps
from fazai.agent.loop import run_agent
from fazai.config import AgentSettings, SafetySettings
from fazai.models.scripted import ScriptedProvider
from fazai.safety import SafetyPolicy
from fazai.targets.local import shell_argv


class _NoHuman:
    async def approve(self, *args: object) -> bool:
        return False

    async def answer(self, *args: object) -> None:
        return None


async def bare(n: int, argv: list[str] | None = None, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec(
            *(argv or shell_argv("true")),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        await proc.communicate()
    return time.perf_counter() - start


async def login(n: int) -> float:
    """The issue's original baseline, ``bash -lc true``: a login shell reading this system's
    /etc/profile, with a HOME that has no dotfiles (an operator's own would only make it slower)."""
    with tempfile.TemporaryDirectory() as home:
        return await bare(n, ["bash", "-lc", "true"], {**os.environ, "HOME": home})


async def loop(n: int) -> tuple[float, int]:
    # Distinct commands (`true 1`, `true 2`, …): the loop does not re-run a verbatim repeat, and a
    # skipped command would make the loop look cheaper than bash.
    shells = [json.dumps({"action": "shell", "command": f"true {i}"}) for i in range(n)]
    script = [*shells, json.dumps({"action": "done", "answer": "ok", "status": "success"})]
    deps = AgentDeps(
        provider=ScriptedProvider(script, chunk_size=16),
        policy=SafetyPolicy(SafetySettings()),  # the real classifier: part of the overhead
        settings=AgentSettings(max_iterations=n + 1),
    )
    events = 0
    start = time.perf_counter()
    async for _ in run_agent(
        "bench", session_id="bench", deps=deps, interaction=_NoHuman(), abort=asyncio.Event()
    ):
        events += 1
    return time.perf_counter() - start, events


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=10, help="interleave bare and loop runs (load drifts)")
    args = ap.parse_args()
    per = max(1, args.n // args.rounds)
    await bare(5)  # warm the page cache
    base = took = lc = 0.0
    events = 0
    for _ in range(args.rounds):
        base += await bare(per)
        lc += await login(per)
        t, e = await loop(per)
        took, events = took + t, events + e
    n = per * args.rounds
    print(f"bare bash -c true x{n}: {base:.3f}s ({base / n * 1000:.1f} ms each; what the local target runs)")
    print(f"bare bash -lc true x{n}: {lc:.3f}s ({lc / n * 1000:.1f} ms each; the issue's baseline)")
    print(f"run_agent shell true x{n}: {took:.3f}s ({took / n * 1000:.1f} ms each, {events} events)")
    print(f"loop overhead: {(took - base) / n * 1000:.2f} ms per iteration")
    print(f"ratio loop/bare bash -c: {took / base:.2f} (target <= 1.2); loop/bare bash -lc: {took / lc:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
