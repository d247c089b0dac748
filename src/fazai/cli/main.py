"""The ``fazai`` command. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from fazai import __version__

if TYPE_CHECKING:
    from fazai.config import Settings

app = typer.Typer(
    name="fazai",
    help="FazAI — an AI operations pilot for Linux servers and OPNsense firewalls.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _Err:
    """stderr Console, created on first use (rich costs start-up time `fazai version` needn't pay)."""

    _console = None

    def print(self, *args: object, **kw: object) -> None:
        if self._console is None:
            from rich.console import Console

            type(self)._console = Console(stderr=True)
        self._console.print(*args, **kw)  # type: ignore[attr-defined]


err = _Err()


def settings_or_exit() -> Settings:
    """Load settings, or print the configuration error and exit 2."""
    from fazai.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e


@app.command()
def version() -> None:
    """Print FazAI's version."""
    print(__version__)


@app.command("config")
def show_config() -> None:
    """Show the effective configuration (file + FAZAI_* environment) as TOML-like JSON."""
    import json
    import re

    s = settings_or_exit()
    err.print(f"# source: {s.source or '(defaults; no file)'}")
    data = s.model_dump(mode="json")
    url = data["daemon"].get("database_url")
    if url:
        # Never print the database password (scheme://user:PASSWORD@host/db).
        data["daemon"]["database_url"] = re.sub(r"^([^:/]+://[^:/@]*:)[^@]*@", r"\1***@", url)
    for spec in (data["ai_provider"], *data["ai_provider"].get("fallback", [])):
        for h in spec.get("headers", {}):
            if re.search(r"auth|key|token|secret", h, re.IGNORECASE):
                spec["headers"][h] = "***"
    print(json.dumps(data, indent=2))


def _register(only: str | None = None) -> None:
    # Command groups register themselves here; import errors surface at start, not mid-run.
    from fazai.cli import registry

    registry.register_all(app, only)


def _command_name(argv: list[str]) -> str | None:
    # The first word that is not an option: the command (global options come before it).
    return next((a for a in argv if not a.startswith("-")), None)


def main() -> None:
    """Entry point of the ``fazai`` console script."""
    name = _command_name(sys.argv[1:])
    if name not in ("version", "config"):  # those two are defined here: no group needed
        _register(name)
    try:
        app()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
