"""What the audit anchor costs an append: N audit appends (SQLite store, each record committed, then
the anchor written: temporary file, fsync, rename, fsync of the folder) against N appends of the same
records with the anchor step skipped, in one run. The anchor is written after every append, so the
ratio is its whole price; audit records are a few per sign-in, approval or admin change, not per event.

Usage: .venv/bin/python bench/bench_audit_anchor.py [--appends 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from fazai.audit import AuditLog
from fazai.store import Store


async def _run(state: Path, n: int, anchor: bool) -> list[float]:
    store = await Store.open(f"sqlite+aiosqlite:///{state / 'fazai.db'}")
    log = AuditLog(store.engine, state)
    if not anchor:

        async def skip(seq: int, h: str, *, strict: bool = False) -> None:
            return None

        log._advance = skip  # type: ignore[method-assign]  # the baseline: the chain alone
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        await log.append(f"user{i}", "login", f"user{i}", "ok", source="10.0.0.1")
        times.append(time.perf_counter() - t0)
    assert (await log.verify()).ok
    await store.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--appends", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fazai-bench-anchor-") as tmp:
        base, anch = Path(tmp) / "base", Path(tmp) / "anchor"
        base.mkdir()
        anch.mkdir()
        # Alternate halves so machine load hits both alike.
        half = args.appends // 2
        b = asyncio.run(_run(base, half, False))
        a = asyncio.run(_run(anch, half, True))
        b += asyncio.run(_run(base, args.appends - half, False))
        a += asyncio.run(_run(anch, args.appends - half, True))
    mb, ma = statistics.median(b) * 1000, statistics.median(a) * 1000
    p99 = sorted(a)[int(len(a) * 0.99) - 1] * 1000
    print(f"appends: {len(a)} each; load average {os.getloadavg()[0]:.2f}")
    print(f"append without anchor: median {mb:.2f} ms")
    print(f"append with anchor:    median {ma:.2f} ms (p99 {p99:.2f} ms); ratio {ma / mb:.2f}")


if __name__ == "__main__":
    main()
