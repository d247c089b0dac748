"""``fazai metrics [NODE] [--since 1h]``: current values and sparklines of a node's metrics."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def register(root: typer.Typer) -> None:
    """Attach ``fazai metrics``."""
    root.command("metrics")(metrics)


def _human(name: str, v: float) -> str:
    if name.endswith("_bytes"):
        for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(v) < 1024 or unit == "TiB":
                return f"{v:.1f} {unit}"
            v /= 1024
    if name.endswith("_pct"):
        return f"{v:.1f} %"
    return f"{v:g}"


async def _read(settings: Any, node: str | None, since_s: float) -> dict[str, Any]:
    """From the daemon when one runs, else straight from the store (read-only queries)."""
    from fazai.cli.client import detect_daemon

    if await detect_daemon(settings):
        from fazai.cli.daemon_http import call

        if node is None:
            return {"nodes": await call(settings, "GET", "/telemetry/nodes")}
        return await call(settings, "GET", f"/telemetry/nodes/{node}", params={"since": since_s})
    from fazai.store import Store
    from fazai.telemetry import MetricStore

    store = await Store.open(settings.database_url)
    try:
        m = MetricStore(store.engine)
        if node is None:
            return {"nodes": await m.nodes()}
        latest = await m.latest(node)
        start = time.time() - since_s
        series = {name: [[p.ts, p.value] for p in await m.series(node, name, start)] for (_, name) in latest}
        now = {name: {"ts": ts, "value": v} for (_, name), (ts, v) in latest.items()}
        return {"node": node, "latest": now, "series": series}
    finally:
        await store.close()


def metrics(
    node: str | None = typer.Argument(None, help="the node (none: list the nodes)"),
    since: str = typer.Option("1h", "--since", help="how far back the sparklines go (30m, 1h, 2d)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Current values and sparklines of NODE's metrics (local facts, agent telemetry, firewalls)."""
    from fazai.cli.client_types import ClientError
    from fazai.cli.main import settings_or_exit
    from fazai.playbooks.schema import parse_duration
    from fazai.telemetry import sparkline

    try:
        since_s = parse_duration(since)
    except ValueError as e:
        err.print(f"[red]error:[/] --since: {e}")
        raise typer.Exit(2) from e
    try:
        data = asyncio.run(_read(settings_or_exit(), node, since_s))
    except ClientError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    if as_json:
        print(json.dumps(data, indent=2))
        return
    if node is None:
        for n in data["nodes"]:
            print(n)
        if not data["nodes"]:
            err.print("no samples yet (fazaid samples this machine every [telemetry] sample_interval_s)")
        return
    if not data.get("latest"):
        err.print(f"[red]error:[/] no samples of node {node!r} (list the nodes with `fazai metrics`)")
        raise typer.Exit(1)
    t = Table("metric", "now", "min", "max", f"last {since}", title=f"{node}")
    for name in sorted(data["latest"]):
        vals = [v for _, v in data["series"].get(name, [])]
        cur = data["latest"][name]["value"]
        lo, hi = (min(vals), max(vals)) if vals else (cur, cur)
        t.add_row(name, _human(name, cur), _human(name, lo), _human(name, hi), sparkline(vals, 40))
    out.print(t)
