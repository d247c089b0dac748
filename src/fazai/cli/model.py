"""``fazai model …``: packaged models (minimal placeholder; the catalog commands land separately)."""

from __future__ import annotations

import typer

model_app = typer.Typer(name="model", help="Local models: list, pull, info, rm, chat.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach ``fazai model`` to the root app."""
    app.add_typer(model_app, name="model")
