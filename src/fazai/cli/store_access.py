"""Run one async operation against the configured store (users, tokens, audit, secrets commands)."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from fazai.config import Settings

T = TypeVar("T")
err = Console(stderr=True)


def cli_actor() -> str:
    """Who is at the terminal, for audit records (``cli:<login>``)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def with_store(fn: Callable[[Settings, Any], Awaitable[T]], *errors: type[Exception]) -> T:
    """Open the store, run ``fn(settings, store)``, close; listed errors become a message and exit 1."""
    from fazai.cli.main import settings_or_exit
    from fazai.store import Store, StoreError

    settings = settings_or_exit()

    async def go() -> T:
        store = await Store.open(settings.database_url)
        try:
            return await fn(settings, store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except (StoreError, *errors) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e


def read_secret(prompt: str, *, stdin: bool, confirm: bool = True) -> str:
    """A secret from standard input (one line, or all of it) or a hidden prompt — never from argv."""
    if stdin or not sys.stdin.isatty():
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
    else:
        value = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    if not value:
        err.print("[red]error:[/] empty value: nothing was read from standard input or the prompt")
        raise typer.Exit(2)
    return value
