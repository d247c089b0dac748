"""Cost of one service-telemetry sample (``fazai.telemetry.systemd.ServiceSource``).

Against a real systemd user manager and journald (tests/systemd_user.py, needs root) with three
watched units and a flapping one, then on this machine as it is. 20 samples 0.2 s apart after a
baseline; prints the median and max wall time and the child processes' CPU time per sample.

    nice -n 5 .venv/bin/python scripts/measure_service_sampler.py
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fazai.telemetry.systemd import ServiceSample, ServiceSource
from systemd_user import UserSystemd


async def measure(
    src: ServiceSource, n: int = 20, gap: float = 0.2
) -> tuple[float, float, float, ServiceSample]:
    """(median s, max s, child CPU s per sample, last sample)."""
    await src.sample()
    walls = []
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    last = ServiceSample()
    for _ in range(n):
        await asyncio.sleep(gap)
        t = time.perf_counter()
        last = await src.sample()
        walls.append(time.perf_counter() - t)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / n
    return statistics.median(walls), max(walls), cpu, last


def report(what: str, res: tuple[float, float, float, ServiceSample]) -> None:
    med, mx, cpu, last = res
    print(f"{what}: median {med * 1e3:.1f} ms, max {mx * 1e3:.1f} ms, child CPU {cpu * 1e3:.1f} ms/sample")
    print(f"  last sample: {last.values}")


def main() -> None:
    sd = UserSystemd().start()
    try:
        sd.run_unit("fz-web", "sleep 600")
        sd.run_unit(
            "fz-flap",
            "echo '<3>fz-flap: bind: Address already in use' >&2; sleep 0.2; exit 1",
            "Restart=always",
            "RestartSec=200ms",
            "StartLimitIntervalSec=0",
        )
        src = ServiceSource(["fz-web", "fz-flap", "nginx"], systemctl=sd.systemctl, journalctl=sd.journalctl)
        report("real user systemd, 3 watched units", asyncio.run(measure(src)))
    finally:
        sd.stop()
    pid1 = Path("/proc/1/comm").read_text().strip()
    report(f"this machine (PID 1 {pid1})", asyncio.run(measure(ServiceSource(["ssh", "cron"]))))


if __name__ == "__main__":
    main()
