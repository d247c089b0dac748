"""Per-command cost of the targets: local vs ssh on one reused connection vs a fresh ssh per command.

Starts a throwaway sshd on 127.0.0.1 (as the tests do: Debian's openssh-server, root, keys in a temp
dir), runs the same trivial command N times on each target, and prints p50/p99 and the ratio to the
local target measured in the same run.

    .venv/bin/python bench/bench_targets.py            # 30 commands each (well under a minute)
    .venv/bin/python bench/bench_targets.py -n 200     # more samples
    .venv/bin/python bench/bench_targets.py --command 'cat /proc/loadavg'

Note: sshd starts each session with the login user's shell, and bash then reads ``~/.bashrc`` (the
Debian build sources it for ssh sessions): whatever that file does is part of every ssh command's
cost on a node. The bench gives sessions an empty one by default (a fresh node); ``--machine-rc``
keeps this machine's (here root's runs ``pyenv init``, ~0.5 s a session).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fazai.targets.local import LocalTarget
from fazai.targets.ssh import SSHTarget
from targets.sshd import start_sshd


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


async def _time(make, n: int, command: str, fresh: bool) -> list[float]:  # type: ignore[no-untyped-def]
    times: list[float] = []
    target = make()
    await target.run(command)  # warm-up (and, for ssh, the first connection)
    for _ in range(n):
        if fresh:
            target = make()
        t0 = time.perf_counter()
        res = await target.run(command)
        times.append(time.perf_counter() - t0)
        if not res.ok:
            raise SystemExit(f"{command!r} failed on {target.name}: {res.exit_code} {res.stderr[:200]}")
        if fresh and hasattr(target, "close"):
            await target.close()
    if hasattr(target, "close"):
        await target.close()
    return times


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=30, help="commands per target (default 30)")
    ap.add_argument("--command", default="true", help="the command timed (default: true)")
    ap.add_argument(
        "--machine-rc", action="store_true", help="sessions read this machine's real ~/.bashrc (see the note)"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fazai-bench-sshd-") as d:
        srv = start_sshd(Path(d), clean_home=not args.machine_rc)
        try:

            def ssh() -> SSHTarget:
                return SSHTarget(srv.host, name="sshd", port=srv.port, user=srv.user, key_path=srv.user_key,
                                 known_hosts=srv.known_hosts)  # fmt: skip

            rows = [
                ("local", await _time(LocalTarget, args.n, args.command, False)),
                ("ssh, reused connection", await _time(ssh, args.n, args.command, False)),
                ("ssh, new connection each", await _time(ssh, args.n, args.command, True)),
            ]
        finally:
            srv.stop()
    base = statistics.median(rows[0][1])
    base99 = _pct(rows[0][1], 0.99)
    rc = "this machine's ~/.bashrc" if args.machine_rc else "an empty ~/.bashrc"
    print(f"{args.n} × {args.command!r} per target (sshd on 127.0.0.1, same machine, sessions with {rc})")
    print(f"{'target':<26} {'p50 ms':>9} {'p99 ms':>9} {'p50 ×local':>11} {'p99 ×local':>11}")
    for name, xs in rows:
        p50, p99 = statistics.median(xs), _pct(xs, 0.99)
        print(f"{name:<26} {p50 * 1e3:9.1f} {p99 * 1e3:9.1f} {p50 / base:11.1f} {p99 / base99:11.1f}")
    reused, fresh = statistics.median(rows[1][1]), statistics.median(rows[2][1])
    print(f"connection reuse saves {1e3 * (fresh - reused):.1f} ms per command (p50), ×{fresh / reused:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
