"""Local facts as a metric source: load, CPU, memory, root disk, network bytes, read from /proc.

No command runs: these are files the kernel keeps current, so sampling costs well under a
millisecond and can run every few seconds. CPU use needs two readings; the first sample has none.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def node_name() -> str:
    """This machine's node name in the telemetry store (its hostname)."""
    return socket.gethostname() or "local"


class LocalSource:
    """Samples this machine; keeps the previous CPU counters to turn them into a percentage."""

    def __init__(self, proc: Path = Path("/proc"), disk_path: str = "/"):
        self.proc = proc
        self.disk_path = disk_path
        self._cpu: tuple[int, int] | None = None

    def sample(self) -> dict[str, float]:
        """Current values (names: load1, load5, load15, cpu_pct, mem_used_pct, mem_available_bytes,
        disk_used_pct, disk_free_bytes, net_rx_bytes, net_tx_bytes)."""
        out: dict[str, float] = {}
        try:
            load = (self.proc / "loadavg").read_text().split()
            out.update(load1=float(load[0]), load5=float(load[1]), load15=float(load[2]))
        except (OSError, IndexError, ValueError):
            pass
        cpu = self._cpu_pct()
        if cpu is not None:
            out["cpu_pct"] = cpu
        out.update(self._memory())
        try:
            st = os.statvfs(self.disk_path)
            total = st.f_blocks * st.f_frsize
            free = st.f_bavail * st.f_frsize
            if total:
                out["disk_used_pct"] = round(100.0 * (total - free) / total, 2)
                out["disk_free_bytes"] = float(free)
        except OSError:
            pass
        out.update(self._net())
        return out

    def _cpu_pct(self) -> float | None:
        try:
            fields = (self.proc / "stat").read_text().split("\n", 1)[0].split()[1:]
            nums = [int(x) for x in fields]
        except (OSError, ValueError):
            return None
        idle = nums[3] + (nums[4] if len(nums) > 4 else 0)
        total = sum(nums[:8])
        prev, self._cpu = self._cpu, (idle, total)
        if prev is None or total <= prev[1]:
            return None
        return round(100.0 * (1 - (idle - prev[0]) / (total - prev[1])), 2)

    def _memory(self) -> dict[str, float]:
        try:
            info = {}
            for line in (self.proc / "meminfo").read_text().splitlines():
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
            total, avail = info["MemTotal"], info["MemAvailable"]
        except (OSError, KeyError, ValueError, IndexError):
            return {}
        return {
            "mem_used_pct": round(100.0 * (total - avail) / total, 2),
            "mem_available_bytes": float(avail),
        }

    def _net(self) -> dict[str, float]:
        rx = tx = 0
        try:
            for line in (self.proc / "net" / "dev").read_text().splitlines()[2:]:
                name, _, rest = line.partition(":")
                if name.strip() == "lo":
                    continue
                cols = rest.split()
                rx += int(cols[0])
                tx += int(cols[8])
        except (OSError, ValueError, IndexError):
            return {}
        return {"net_rx_bytes": float(rx), "net_tx_bytes": float(tx)}
