"""``fazai audit``: list, export (JSON lines) and verify the hash-chained audit trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fazai.cli.store_access import with_store

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _log(settings, store):  # type: ignore[no-untyped-def]
    from fazai.audit import AuditLog

    return AuditLog(store.engine, settings.paths.state_dir)


@audit_app.command("list")
def list_records(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="newest N records")] = 50,
    actor: Annotated[str | None, typer.Option("--actor", help="only this actor")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="only this action (login, approval…)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The newest audit records."""

    async def go(settings, store):  # type: ignore[no-untyped-def]
        return await _log(settings, store).recent(limit, actor=actor, action=action)

    rows = with_store(go)
    if json_out:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    t = Table("#", "time", "who", "from", "what", "target", "decision")
    for r in rows:
        t.add_row(str(r.seq), r.ts[:19], r.actor, r.source, r.action, r.target, r.decision)
    out.print(t if rows else "the audit trail is empty")


@audit_app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here instead of stdout")
    ] = None,
) -> None:
    """Every record, oldest first, as JSON lines (with its hashes, so an export can be verified)."""

    async def go(settings, store) -> int:  # type: ignore[no-untyped-def]
        n = 0
        fh = output.open("w") if output else None
        try:
            async for r in _log(settings, store).iter():
                line = json.dumps(r.to_dict(), sort_keys=True)
                if fh:
                    fh.write(line + "\n")
                else:
                    print(line)
                n += 1
        finally:
            if fh:
                fh.close()
        return n

    n = with_store(go, OSError)
    err.print(f"{n} records exported" + (f" to {output}" if output else ""))


@audit_app.command("verify")
def verify(
    anchors: Annotated[
        list[Path] | None,
        typer.Option(
            "--anchor",
            help="also check a copy of another replica's audit.anchor (repeatable)",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check the whole chain and the anchor; exit 1 naming the first edited, removed or reordered
    record, or the newest records missing (the chain no longer reaches the anchor)."""

    async def go(settings, store):  # type: ignore[no-untyped-def]
        return await _log(settings, store).verify(anchors or (), advance=True)

    res = with_store(go)
    if json_out:
        print(
            json.dumps(
                {
                    "ok": res.ok,
                    "records": res.count,
                    "bad_seq": res.bad_seq,
                    "problem": res.problem,
                    "anchor": res.anchor,
                    "note": res.note,
                }
            )
        )
    elif res.ok:
        anchored = f", anchored at record {res.anchor}" if res.anchor else ""
        out.print(f"audit trail intact: {res.count} records{anchored}")
        if res.note:
            err.print(f"[yellow]note:[/] {res.note}")
    else:
        where = f"at record {res.bad_seq}" if res.bad_seq is not None else "(anchor)"
        err.print(f"[red]audit trail broken {where}:[/] {res.problem}")
    if not res.ok:
        raise typer.Exit(1)


@audit_app.command("anchor")
def anchor(
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="accept the trail as it is now (e.g. after a restore from backup): audited",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show this host's anchor (the newest record it has seen, kept outside the database)."""
    from fazai.audit.anchor import AnchorError, read_anchor
    from fazai.cli.store_access import cli_actor

    async def go(settings, store):  # type: ignore[no-untyped-def]
        log = _log(settings, store)
        if reset:
            rec = await log.reset_anchor(cli_actor())
            return {"path": str(log.anchor_path), "seq": rec.seq, "hash": rec.hash, "reset": True}
        try:
            a = read_anchor(log.anchor_path, log.key)
        except AnchorError as e:
            return {"path": str(log.anchor_path), "error": str(e)}
        if a is None:
            return {"path": str(log.anchor_path), "seq": None}
        return {"path": str(log.anchor_path), "seq": a.seq, "hash": a.hash, "ts": a.ts}

    res = with_store(go)
    if json_out:
        print(json.dumps(res))
    elif res.get("error"):
        err.print(f"[red]{res['error']}[/]: check the trail (`fazai audit verify`), then `--reset`")
    elif res.get("reset"):
        out.print(f"anchor reset: {res['path']} now names record {res['seq']} (recorded in the trail)")
    elif res["seq"] is None:
        out.print(f"no anchor yet ({res['path']} is written at the next audit record)")
    else:
        out.print(f"{res['path']}: record {res['seq']} ({res['hash'][:16]}…), written {res['ts']}")
    if res.get("error"):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach ``fazai audit``."""
    app.add_typer(audit_app, name="audit")
