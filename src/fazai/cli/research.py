"""``fazai research QUERY``: ask the research backends directly (what the ``research`` action does)."""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console

out = Console()


def research_command(
    query: str = typer.Argument(..., help="what to look up"),
    source: list[str] = typer.Option(
        [], "--source", "-s", help="kb, docs (local docs + Context7) or web; repeat for several; default: all"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Search local docs, Context7 and web search as the agent would, and show which backends answered.

    The knowledge base is searched with ``fazai kb search``; this command covers the other backends.
    """
    from fazai.cli.main import settings_or_exit

    settings = settings_or_exit()
    # Imported here: the backends pull httpx, which no other command needs at start.
    from fazai.knowledge.research import build_backends, missing_sources, research, select_backends

    available = build_backends(settings.research)
    backends = select_backends(available, source or None)
    result = asyncio.run(
        research(query, backends, k=settings.research.max_results, timeout_s=settings.research.timeout_s)
    )
    result.unavailable += missing_sources(available, source or None)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        out.print(result.as_text(max_chars=20000), markup=False, highlight=False)
    if not result.hits and result.unavailable:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach ``fazai research`` to the root app."""
    app.command("research")(research_command)
