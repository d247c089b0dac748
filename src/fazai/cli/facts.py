"""``fazai facts``: what FazAI sees on this machine (the context a session starts with)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

out = Console()


def facts(
    json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    budget: Annotated[
        float, typer.Option("--budget", help="seconds allowed for all collectors together")
    ] = 3.0,
) -> None:
    """Collect system facts (OS, kernel, uptime, CPU, memory, disks, ports, failed units, journal errors)."""
    from fazai.facts import collect_facts

    if budget <= 0:
        out.print("[red]error:[/] --budget must be positive")
        raise typer.Exit(2)
    f = asyncio.run(collect_facts(budget_s=budget))
    if json_:
        print(f.model_dump_json(indent=2))
    else:
        print(f.as_prompt(max_chars=10_000))
        out.print(f"[dim]collected in {f.duration_s:.2f}s[/]")


def register(app: typer.Typer) -> None:
    """Attach ``fazai facts`` to the root app."""
    app.command("facts")(facts)
