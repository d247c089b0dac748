"""An OPNsense firewall as a metric source: interface link state, gateway status, memory and load,
read through its API (``fazai.opnsense``). Names are ``if_<identifier>_up``, ``gw_<name>_online``,
``gw_<name>_loss_pct``, ``gw_<name>_delay_ms``, ``mem_used_pct``, ``load1/5/15``.

Interface byte counters need the per-interface details call (``interfacesInfo/1``), whose field
names the reference does not pin down; they are left out until checked on a real appliance.
"""

from __future__ import annotations

import re
from typing import Any

_NUM = re.compile(r"^\s*([0-9.]+)")
# Gateway states that still route traffic (dpinger: none = online; delay/loss = degraded but up).
_ONLINE = {"none", "delay", "loss", "delay+loss"}


def _name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower() or "unnamed"


def _num(text: Any) -> float | None:
    m = _NUM.match(str(text))
    return float(m.group(1)) if m else None


def firewall_values(
    interfaces: list[dict[str, Any]], gateways: list[dict[str, Any]], resources: dict[str, Any]
) -> dict[str, float]:
    """Metric values from the three API reads (pure: unit-testable on recorded replies)."""
    out: dict[str, float] = {}
    for row in interfaces:
        ident = row.get("identifier")
        if ident:
            out[f"if_{_name(ident)}_up"] = 1.0 if row.get("status") == "up" else 0.0
    for gw in gateways:
        name = _name(str(gw.get("name", "")))
        out[f"gw_{name}_online"] = 1.0 if gw.get("status") in _ONLINE else 0.0
        for key, metric in (("loss", "loss_pct"), ("delay", "delay_ms")):
            v = _num(gw.get(key, "~"))
            if v is not None:
                out[f"gw_{name}_{metric}"] = v
    mem = (resources.get("resources") or {}).get("memory") or {}
    try:
        total, used = float(mem["total"]), float(mem["used"])
        if total > 0:
            out["mem_used_pct"] = round(100.0 * used / total, 2)
    except (KeyError, TypeError, ValueError):
        pass
    load = str((resources.get("time") or {}).get("loadavg", ""))
    parts = [_num(x) for x in load.split(",")]
    for key, v in zip(("load1", "load5", "load15"), parts, strict=False):
        if v is not None:
            out[key] = v
    return out


async def sample_firewall(fw: Any) -> dict[str, float]:
    """Read a connected :class:`fazai.opnsense.firewall.Firewall` and return its values."""
    return firewall_values(await fw.interfaces(), await fw.gateways(), await fw.resources())
