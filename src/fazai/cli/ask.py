"""``fazai ask "question"``: the agent's question mode (read-only, [ask] limits), same daemon and log.

Human output: the answer, then the commands executed (dimmed). ``--json``: one JSON object on the last
line of stdout: ``{question, answer, executed_commands, results, iterations, success, metrics}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import typer
from rich.console import Console

from fazai.cli.client_types import ClientError
from fazai.protocol import Event

err = Console(stderr=True)


class _Collector:
    """A renderer that only keeps the events (``--json`` prints the result at the end)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, ev: Event) -> None:
        self.events.append(ev)


async def _run_ask(
    question: str, *, model: str | None, json_mode: bool, embedded: bool | None, node: str | None = None
) -> int:
    from fazai.agent.ask import ask_result
    from fazai.cli.agent import _Session, _settings
    from fazai.cli.client import connect
    from fazai.cli.render import Renderer
    from fazai.sessions import logs
    from fazai.sessions.manager import RunOptions

    t0 = time.perf_counter()
    settings = _settings()
    logs.configure("warning")
    try:
        client = await connect(settings, embedded=embedded)
    except ClientError as e:
        err.print(f"[red]error:[/] {e}")
        return 3
    collector = _Collector()
    renderer = Renderer(ask=True, verbose=settings.ask.debug)
    sink: Any = collector if json_mode else renderer
    session = _Session(client, sink, interactive=False, json_mode=json_mode)
    status: str | None = None
    try:
        status = await session.run(
            client.generate(question, None, RunOptions(model=model, mode="ask", node=node))
        )
    except ClientError as e:
        err.print(f"[red]error:[/] {e}")
        return 3
    finally:
        await client.aclose()
    if json_mode:
        result = ask_result(question, collector.events, wall_s=time.perf_counter() - t0)
        print(json.dumps(result, ensure_ascii=False), flush=True)
        return 0 if result["success"] else 1
    summary = renderer.finish(status)
    final = summary.get("status") or status or "failed"
    return 0 if final in ("success", "done") else 130 if final in ("aborted", "interrupted") else 1


def ask_cmd(
    question: str = typer.Argument(..., help="the question about this server"),
    json_mode: bool = typer.Option(
        False, "--json", help="one JSON object: question, answer, commands, results, metrics"
    ),
    model: str = typer.Option(None, "--model", help="model for this question (default [ai_provider] model)"),
    embedded: bool = typer.Option(
        None, "--embedded/--daemon", help="force the in-process runner / require the daemon (default: auto)"
    ),
    node: str = typer.Option(None, "--node", help="ask about this inventory node (fazai nodes list)"),
    nodes: str = typer.Option(
        None, "--nodes", help="ask every node this selector picks, e.g. 'site=sp,tag=web' (one session each)"
    ),
    concurrency: int = typer.Option(None, "--concurrency", min=1, help="nodes at once (default [nodes])"),
    command: bool = typer.Option(
        False, "--command", help="with --nodes: the text is one read-only command, run on each node, no model"
    ),
) -> None:
    """Answer a question by planning and running read-only commands (never changes the system)."""
    if not question.strip():
        err.print('[red]error:[/] ask something: fazai ask "how many IPs are banned in fail2ban?"')
        raise typer.Exit(2)
    if node and nodes:
        err.print("[red]error:[/] give --node NAME (one node) or --nodes SELECTOR (several), not both")
        raise typer.Exit(2)
    if command and not nodes:
        err.print("[red]error:[/] --command goes with --nodes SELECTOR (on one machine, just run it)")
        raise typer.Exit(2)
    if nodes:
        from fazai.cli.fanout import run_fanout

        mode = "command" if command else "ask"
        code = asyncio.run(
            run_fanout(
                question, nodes, mode=mode, model=model, json_mode=json_mode, embedded=embedded,
                concurrency=concurrency,
            )
        )  # fmt: skip
        raise typer.Exit(code)
    raise typer.Exit(
        asyncio.run(_run_ask(question, model=model, json_mode=json_mode, embedded=embedded, node=node))
    )


def register(app: typer.Typer) -> None:
    """Attach ``fazai ask`` to the root app."""
    app.command("ask")(ask_cmd)
