"""The ``fazai`` command. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from fazai import __version__
from fazai.config import ConfigError, Settings, load_settings

app = typer.Typer(
    name="fazai",
    help="FazAI — an AI operations pilot for Linux servers and OPNsense firewalls.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True)


def settings_or_exit() -> Settings:
    """Load settings, or print the configuration error and exit 2."""
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


def _register() -> None:
    # Command groups register themselves here; import errors surface at start, not mid-run.
    from fazai.cli import registry

    registry.register_all(app)


def main() -> None:
    """Entry point of the ``fazai`` console script."""
    _register()
    try:
        app()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
