"""CLI start-up: `fazai --help`, `fazai version`, `fazai sessions` against `python -c pass`, same run.

Prints the median wall time and the median CPU time (user + system, from wait4) of each, and each
one's ratio to `python -c pass` measured in the same run (goal: ≤ 7×). On a loaded machine the CPU
ratio is the steadier figure. `fazai sessions` runs embedded on an empty store in a temp folder.

    .venv/bin/python bench/bench_cli_startup.py            # 5 runs each
    .venv/bin/python bench/bench_cli_startup.py --runs 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAZAI = [str(Path(sys.executable).with_name("fazai"))]


def _one(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {p.returncode}")
    return wall, ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "fazai.toml"
        cfg.write_text(
            f'[paths]\nstate_dir = "{tmp}/state"\nruntime_dir = "{tmp}/run"\n[daemon]\nport = 42199\n'
        )
        env = {**os.environ, "FAZAI_CONFIG": str(cfg), "COLUMNS": "80"}
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "fazai version": [*FAZAI, "version"],
            "fazai --help": [*FAZAI, "--help"],
            "fazai sessions": [*FAZAI, "sessions"],
        }
        _one(cases["fazai sessions"], env)  # creates the store once (migrations are not start-up)
        results: dict[str, tuple[float, float]] = {}
        for name, argv in cases.items():
            runs = [_one(argv, env) for _ in range(args.runs)]
            results[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
    base_wall, base_cpu = results["python -c pass"]
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.runs} runs each (median)")
    print(f"{'command':<18}{'wall s':>9}{'× pass':>9}{'cpu s':>9}{'× pass':>9}")
    for name, (wall, cpu) in results.items():
        print(f"{name:<18}{wall:>9.3f}{wall / base_wall:>9.1f}{cpu:>9.3f}{cpu / max(base_cpu, 1e-4):>9.1f}")


if __name__ == "__main__":
    main()
