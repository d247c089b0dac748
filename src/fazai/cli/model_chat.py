"""``fazai model chat "prompt"``: stream an answer from the resident worker (auto-started)."""

from __future__ import annotations

import asyncio
import sys

import typer
from rich.console import Console
from rich.markup import escape

from fazai.models.base import Final, Message, ProviderError, SessionParams, Token

err = Console(stderr=True)


async def _chat(
    prompt: str, system: str | None, model: str | None, max_tokens: int, temperature: float
) -> int:
    from fazai.cli.main import settings_or_exit
    from fazai.models.worker_client import WorkerProvider

    settings = settings_or_exit()
    provider = WorkerProvider.from_settings(
        settings, model=model, on_progress=lambda msg: err.print(f"[dim]{escape(msg)}[/]")
    )
    try:
        session = await provider.open_session(SessionParams(max_tokens=max_tokens, temperature=temperature))
        messages = [Message("system", system)] if system else []
        messages.append(Message("user", prompt))
        final: Final | None = None
        try:
            async for chunk in session.generate(messages):
                if isinstance(chunk, Token):
                    sys.stdout.write(chunk.text)
                    sys.stdout.flush()
                else:
                    final = chunk
        finally:
            await session.close()
        sys.stdout.write("\n")
        sys.stdout.flush()
        if final is not None:
            u = final.usage
            err.print(
                f"[dim]{final.model} · {u.prompt_tokens} prompt tokens ({u.cached_tokens} cached) · "
                f"{u.generated_tokens} generated · first token {u.ttft_ms:.0f} ms · "
                f"{u.tokens_per_s:.1f} tok/s · {final.stop_reason}[/]"
            )
        return 0
    except ProviderError as e:
        err.print(f"[red]error:[/] {escape(str(e))}")
        return 1
    finally:
        await provider.aclose()


def chat(
    prompt: str = typer.Argument(..., help="what to ask the local model"),
    system: str | None = typer.Option(None, "--system", "-s", help="system message"),
    model: str | None = typer.Option(None, "--model", "-m", help="model to start the worker with"),
    max_tokens: int = typer.Option(256, "--max-tokens", "-n", min=1, help="generation limit"),
    temperature: float = typer.Option(0.2, "--temperature", "-t", min=0.0, max=2.0),
) -> None:
    """Stream an answer from the local model (starts the worker if none runs)."""
    raise typer.Exit(asyncio.run(_chat(prompt, system, model, max_tokens, temperature)))


def register(app: typer.Typer) -> None:
    """Add ``chat`` to the ``fazai model`` group."""
    from fazai.cli.model import model_app

    model_app.command("chat")(chat)
