"""The ops benchmark (`fazai ask` on sandboxed operations questions), reachable from scripts/bench.sh.

    .venv/bin/python bench/bench_ops.py            # every case, every installed packaged model
    .venv/bin/python bench/bench_ops.py --quick    # 11 cases (the seed's + one per area)

Other options go to bench/ops/run.py (``--models``, ``--cases``, ``--max-time``, ``--json``). Arguments
meant for the other benchmarks of scripts/bench.sh are ignored. Needs bubblewrap; without it, or
without an installed model, it says so and exits 0 (nothing to measure here).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KNOWN = {"--quick", "--models", "--models-dir", "--cases", "--json", "--max-time"}


def _ours(argv: list[str]) -> list[str]:
    """Keep only run.py's options (and their values)."""
    out, keep = [], False
    for a in argv:
        if a.startswith("--"):
            keep = a.split("=", 1)[0] in KNOWN
        if keep:
            out.append(a)
    return out


def main() -> int:
    if shutil.which("bwrap") is None:
        print("bench_ops: skipped (needs bubblewrap: apt-get install bubblewrap)")
        return 0
    cmd = [sys.executable, str(HERE / "ops" / "run.py"), *_ours(sys.argv[1:])]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
