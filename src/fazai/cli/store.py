"""``fazai store``: the session store's schema (``migrate``, ``status``) and the replicas using it."""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console

from fazai.cli.main import settings_or_exit

store_app = typer.Typer(
    help="The session store (SQLite or PostgreSQL): schema and replicas.", no_args_is_help=True
)
err = Console(stderr=True)

_STORE_OPT = typer.Option(None, "--store", help="store URL (default [daemon] database_url)")


def _url(store: str | None) -> str:
    return store or settings_or_exit().database_url


@store_app.command("migrate")
def migrate_cmd(store: str = _STORE_OPT) -> None:
    """Upgrade the schema to this FazAI's revisions (run once per upgrade, from any replica)."""
    from fazai.store import Store, StoreError, db  # the store stack loads only for this command

    url = _url(store)

    async def go() -> set[str]:
        s = await Store.open(url, migrate=True)
        try:
            return await db.schema_heads(s.engine)
        finally:
            await s.close()

    try:
        heads = asyncio.run(go())
    except StoreError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e
    print(f"schema at {', '.join(sorted(heads))}")


@store_app.command("status")
def status_cmd(
    store: str = _STORE_OPT, json_mode: bool = typer.Option(False, "--json", help="machine-readable")
) -> None:
    """The schema revision (and whether it is current) and the replicas with their last heartbeat."""
    from fazai.store import Store, db

    url = _url(store)

    async def go() -> dict[str, object]:
        engine = db.create_engine(url)
        try:
            have = await db.schema_heads(engine)
            out: dict[str, object] = {"schema": sorted(have), "needs": sorted(db.code_heads())}
            out["current"] = have == db.code_heads()
            if out["current"]:
                s = Store(engine, db.normalize_url(url))
                out["replicas"] = await s.list_replicas()
            return out
        finally:
            await engine.dispose()

    try:
        out = asyncio.run(go())
    except Exception as e:
        err.print(f"[red]error:[/] cannot read the store: {str(e).splitlines()[0]}")
        raise typer.Exit(2) from e
    if json_mode:
        print(json.dumps(out, indent=2))
        return
    state = "current" if out["current"] else "behind: run `fazai store migrate`"
    print(f"schema: {', '.join(out['schema']) or 'empty'} ({state})")  # type: ignore[arg-type]
    for r in out.get("replicas", []):  # type: ignore[attr-defined]
        where = f"  {r['url']}" if r.get("url") else ""
        print(f"replica {r['id']}: last heartbeat {r['heartbeat_at']}{where}")


def register(app: typer.Typer) -> None:
    """Attach ``fazai store`` to the root app."""
    app.add_typer(store_app, name="store")
