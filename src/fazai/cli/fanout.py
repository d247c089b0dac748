"""``fazai ask --nodes SELECTOR``: one question on many nodes, a row per node and the summary."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from fazai.cli.client_types import ClientError

err = Console(stderr=True)
_COLORS = {"done": "green", "unverified": "yellow"}


def render_report(report: dict[str, Any], console: Console | None = None) -> None:
    """The table (a row per node, differing answers marked) and the summary line."""
    c = console or Console()
    t = Table(box=None, pad_edge=False)
    t.add_column("node", no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("", no_wrap=True)  # ≠ marks an answer that differs from the most common one
    t.add_column("answer / reason", overflow="fold")
    t.add_column("session", no_wrap=True)
    for r in report["nodes"]:
        st = r["status"]
        text = r["answer"] if r["answer"] is not None else (r["error"] or "")
        t.add_row(
            r["node"], f"[{_COLORS.get(st, 'red')}]{st}[/]", "[yellow]≠[/]" if r["differs"] else "",
            text.strip()[:600], r["session"] or "-",
        )  # fmt: skip
    c.print(t)
    c.print(f"[bold]{report['summary']}[/] [dim]({report['wall_s']:.1f}s)[/]")


async def run_fanout(
    goal: str,
    selector: str,
    *,
    mode: str,
    model: str | None,
    json_mode: bool,
    embedded: bool | None,
    concurrency: int | None = None,
    yes: bool = False,
    max_iterations: int | None = None,
) -> int:
    """Run the fan-out through the daemon (or embedded); 0 when every node answered."""
    from fazai.cli.agent import _settings
    from fazai.cli.client import connect
    from fazai.sessions import logs
    from fazai.sessions.manager import RunOptions

    settings = _settings()
    logs.configure("warning")
    try:
        client = await connect(settings, embedded=embedded)
    except ClientError as e:
        err.print(f"[red]error:[/] {e}")
        return 3
    try:
        opts = RunOptions(mode=mode, model=model, yes=yes, max_iterations=max_iterations)
        report = await client.fanout(goal, selector, opts, concurrency)
    except ClientError as e:
        err.print(f"[red]error:[/] {e}")
        return 2 if "selector" in str(e) else 3
    finally:
        await client.aclose()
    if json_mode:
        print(json.dumps(report, ensure_ascii=False), flush=True)
    else:
        render_report(report)
    return 0 if report["total"] and report["answered"] == report["total"] else 1
