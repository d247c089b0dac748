"""``fazai kb``: search, list, show, add, verify, remove, export and import knowledge items."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the KB pulls numpy and the embedder: imported by the commands that use it
    from fazai.knowledge.kb import KBFilters, KBItem, KnowledgeBase

kb_app = typer.Typer(help="The knowledge base: recipes FazAI knows and learns.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

TagOpt = Annotated[
    list[str] | None, typer.Option("--tag", "-t", help="only items with this tag (repeatable)")
]
OsOpt = Annotated[str | None, typer.Option("--os", help="OS or distro: linux, debian, debian-12, opnsense…")]
ServiceOpt = Annotated[str | None, typer.Option("--service", "-s", help="only items for this service")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@contextmanager
def _kb() -> Iterator[KnowledgeBase]:
    """Open the configured KB, turning every failure into a clear message and exit code 1."""
    from fazai.cli.main import settings_or_exit
    from fazai.knowledge.assets import AssetError
    from fazai.knowledge.embeddings import EmbeddingError
    from fazai.knowledge.kb import KBError, open_kb
    from fazai.knowledge.store import StoreError

    settings = settings_or_exit()
    try:
        kb = open_kb(settings)
    except (AssetError, EmbeddingError, KBError, StoreError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    try:
        yield kb
    except (KBError, StoreError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    finally:
        kb.close()


def _filters(
    tag: list[str] | None, os_: str | None, service: str | None, status: str | None = None
) -> KBFilters:
    if status not in (None, "verified", "unverified", "rejected"):
        err.print(f"[red]error:[/] --status must be verified, unverified or rejected, not {status!r}")
        raise typer.Exit(2)
    from fazai.knowledge.kb import KBFilters

    return KBFilters(tags=tag or [], os=os_, service=service, status=status, include_rejected=True)  # type: ignore[arg-type]


def _table(items: list[KBItem], scores: list[float] | None = None) -> Table:
    t = Table(show_lines=False)
    if scores is not None:
        t.add_column("score", justify="right")
    t.add_column("id", no_wrap=True)
    for col in ("status", "title", "tags", "checked on"):
        t.add_column(col, overflow="fold")
    for n, it in enumerate(items):
        row = [it.id, it.status, it.title, ", ".join(it.tags), ", ".join(it.distros) or it.os]
        if scores is not None:
            row.insert(0, f"{scores[n]:.2f}")
        t.add_row(*row)
    return t


@kb_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="what you want to do, in your words")],
    k: Annotated[int, typer.Option("-k", help="how many results")] = 5,
    tag: TagOpt = None,
    os_: OsOpt = None,
    service: ServiceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Search by meaning: verified recipes first, then similarity, then recency."""
    with _kb() as kb:
        hits = kb.search(query, _filters(tag, os_, service), k=k)
    if json_:
        print(json.dumps([{"score": round(h.similarity, 4), **h.item.model_dump(mode="json")} for h in hits]))
        return
    if not hits:
        err.print("no matching knowledge; try other words or fewer filters")
        return
    out.print(_table([h.item for h in hits], [h.similarity for h in hits]))


@kb_app.command("list")
def list_(
    tag: TagOpt = None,
    os_: OsOpt = None,
    service: ServiceOpt = None,
    status: Annotated[str | None, typer.Option("--status", help="verified, unverified or rejected")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="at most this many")] = None,
    json_: JsonOpt = False,
) -> None:
    """List items, most recently updated first."""
    with _kb() as kb:
        items = kb.list_items(_filters(tag, os_, service, status), limit=limit)
    if json_:
        print(json.dumps([i.model_dump(mode="json") for i in items]))
        return
    out.print(_table(items))
    err.print(f"{len(items)} item(s)")


@kb_app.command("show")
def show(item_id: Annotated[str, typer.Argument(help="item id")], json_: JsonOpt = False) -> None:
    """Show one item in full."""
    with _kb() as kb:
        item = kb.get(item_id)
    if item is None:
        err.print(f"[red]error:[/] no knowledge item {item_id!r} (see `fazai kb list`)")
        raise typer.Exit(1)
    if json_:
        print(item.model_dump_json(indent=2))
        return
    out.print(f"[bold]{item.title}[/]  [dim]{item.id}[/]")
    checked = ", ".join(item.distros) or "-"
    out.print(f"status: {item.status}   source: {item.source}   os: {item.os}   checked on: {checked}")
    tags = ", ".join(item.tags) or "-"
    out.print(f"tags: {tags}   service: {item.service or '-'}   version: {item.version or '-'}")
    out.print(f"created: {item.created:%Y-%m-%d %H:%M}   updated: {item.updated:%Y-%m-%d %H:%M}")
    if item.notes:
        out.print(f"\n{item.notes}")
    out.print("")
    print(item.snippet)  # plain print: no wrapping, so commands copy-paste intact
    for label, value in (("diff", item.diff), ("evidence", item.evidence)):
        if value:
            out.print(f"\n[bold]{label}:[/]")
            print(value)


@kb_app.command("add")
def add(
    title: Annotated[str, typer.Option("--title", help="what the recipe does")],
    snippet: Annotated[str | None, typer.Option("--snippet", help="commands or configuration")] = None,
    snippet_file: Annotated[
        Path | None, typer.Option("--snippet-file", help="read the snippet from a file (- = stdin)")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="tag (repeatable)")] = None,
    os_: Annotated[str, typer.Option("--os", help="linux, opnsense, freebsd…")] = "linux",
    distro: Annotated[
        list[str] | None, typer.Option("--distro", help="checked on, e.g. debian-12 (repeatable)")
    ] = None,
    service: ServiceOpt = None,
    notes: Annotated[str, typer.Option("--notes", help="when to use it, how to read the output")] = "",
    item_id: Annotated[str | None, typer.Option("--id", help="stable id (default: generated)")] = None,
    verified: Annotated[bool, typer.Option("--verified", help="mark it verified now")] = False,
    json_: JsonOpt = False,
) -> None:
    """Add (or replace, with --id) an item written by the operator."""
    if (snippet is None) == (snippet_file is None):
        err.print("[red]error:[/] give exactly one of --snippet or --snippet-file")
        raise typer.Exit(2)
    if snippet_file is not None:
        try:
            snippet = sys.stdin.read() if str(snippet_file) == "-" else snippet_file.read_text()
        except OSError as e:
            err.print(f"[red]error:[/] cannot read {snippet_file}: {e.strerror}")
            raise typer.Exit(2) from e
    data = {
        "title": title,
        "snippet": (snippet or "").strip(),
        "tags": tag or [],
        "os": os_,
        "distros": distro or [],
        "service": service,
        "notes": notes,
        "status": "verified" if verified else "unverified",
        "source": "operator",
    }
    if item_id:
        data["id"] = item_id
    try:
        from fazai.knowledge.kb import KBItem

        item = KBItem.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        err.print(f"[red]error:[/] {'.'.join(map(str, first['loc']))}: {first['msg']}")
        raise typer.Exit(2) from e
    with _kb() as kb:
        stored = kb.commit(item)
    if json_:
        print(stored.model_dump_json())
    else:
        out.print(f"added {stored.id} ({stored.status})")


@kb_app.command("verify")
def verify(
    item_id: Annotated[str, typer.Argument(help="item id")],
    evidence: Annotated[str | None, typer.Option("--evidence", help="how it was tested")] = None,
) -> None:
    """Mark an item verified: it is then boosted in every search."""
    with _kb() as kb:
        item = kb.verify(item_id, evidence)
    out.print(f"verified {item.id}: {item.title}")


@kb_app.command("reject")
def reject(
    item_id: Annotated[str, typer.Argument(help="item id")],
    reason: Annotated[str | None, typer.Option("--reason", help="why it is wrong")] = None,
) -> None:
    """Mark an item rejected: kept for the record, never offered to a session again."""
    with _kb() as kb:
        item = kb.reject(item_id, reason)
    out.print(f"rejected {item.id}: {item.title}")


@kb_app.command("rm")
def rm(
    item_id: Annotated[str, typer.Argument(help="item id")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
) -> None:
    """Remove an item (export first if you may want it back)."""
    with _kb() as kb:
        item = kb.get(item_id)
        if item is None:
            err.print(f"[red]error:[/] no knowledge item {item_id!r} (see `fazai kb list`)")
            raise typer.Exit(1)
        if not yes and not typer.confirm(f"remove {item_id} ({item.title})?"):
            raise typer.Exit(1)
        kb.delete(item_id)
    out.print(f"removed {item_id}")


@kb_app.command("export")
def export(
    path: Annotated[str, typer.Argument(help="file to write (JSON lines); - = stdout")] = "-",
    tag: TagOpt = None,
    status: Annotated[str | None, typer.Option("--status", help="verified or unverified")] = None,
) -> None:
    """Export items as JSON lines (one item per line), for backup or another FazAI."""
    with _kb() as kb:
        if path == "-":
            n = kb.export(sys.stdout, _filters(tag, None, None, status))
        else:
            target = Path(path)
            tmp = target.with_name(target.name + ".tmp")
            try:
                with tmp.open("w") as f:
                    n = kb.export(f, _filters(tag, None, None, status))
                tmp.replace(target)  # never leave a half-written export under the real name
            except OSError as e:
                err.print(f"[red]error:[/] cannot write {path}: {e.strerror}")
                raise typer.Exit(1) from e
    err.print(f"exported {n} item(s)")


@kb_app.command("import")
def import_(
    path: Annotated[str, typer.Argument(help="JSON lines written by `fazai kb export`; - = stdin")],
) -> None:
    """Import items (same id = replaced). The whole file is validated before anything is written."""
    try:
        lines = sys.stdin.read().splitlines() if path == "-" else Path(path).read_text().splitlines()
    except OSError as e:
        err.print(f"[red]error:[/] cannot read {path}: {e.strerror}")
        raise typer.Exit(2) from e
    with _kb() as kb:
        n = kb.import_items(lines, source_name=path)
    out.print(f"imported {n} item(s)")


def register(app: typer.Typer) -> None:
    """Attach ``fazai kb`` to the root app."""
    app.add_typer(kb_app, name="kb")
