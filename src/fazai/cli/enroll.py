"""``fazai nodes token|pending|approve|reject|revoke``: enrollment of agents (docs/fleet.md).

These commands work on the store and the CA in the state dir directly (the same ones fazaid uses), so
they also work while fazaid is down; a running fazaid's revocation watch closes a revoked node's live
connection within ``[fleet] revocation_poll_s``. They join the ``nodes`` group when one is registered
already (the inventory commands), or create it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _with_registry(fn: Callable[[Any], Awaitable[T]]) -> T:
    from fazai.cli.main import settings_or_exit
    from fazai.fleet.ca import CAError, CertificateAuthority
    from fazai.fleet.gateway import ca_folder
    from fazai.fleet.registry import EnrollError, Registry
    from fazai.store import Store

    settings = settings_or_exit()

    async def run() -> T:
        store = await Store.open(settings.database_url)
        try:
            ca = CertificateAuthority.load_or_create(ca_folder(settings))
            return await fn(Registry(store.engine, ca, cert_days=settings.fleet.cert_days))
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (EnrollError, CAError, ValueError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e


def token(
    site: Annotated[str, typer.Option("--site", help="site the node will belong to")],
    ttl: Annotated[str, typer.Option("--ttl", help="lifetime: 30m, 1h, 2d")] = "1h",
    note: Annotated[str | None, typer.Option("--note", help="free text kept with the token")] = None,
    json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Make a one-time bootstrap token for `fazai-agent enroll`."""
    from fazai.fleet.registry import parse_ttl

    try:
        seconds = parse_ttl(ttl)
    except ValueError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e
    tok, tid, expires = _with_registry(lambda r: r.create_token(site, seconds, note))
    if json_:
        print(json.dumps({"token": tok, "id": tid, "site": site, "expires_at": expires}))
        return
    print(tok)
    err.print(f"[dim]token {tid} for site {site}, one use, expires {expires}[/]")


def pending(json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Enrollments waiting for an operator."""
    rows = _with_registry(lambda r: r.pending())
    if json_:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print("no enrollment is waiting")
        return
    t = Table("enrollment", "node", "site", "hostname", "since", "key")
    for r in rows:
        t.add_row(r["id"], r["node"], r["site"], r["hostname"] or "", r["created_at"], r["key_id"][:16])
    out.print(t)


def approve(
    enrollment: Annotated[str, typer.Argument(help="enrollment id (see `fazai nodes pending`)")],
) -> None:
    """Approve a pending enrollment; the agent picks up its certificate at its next poll."""
    node = _with_registry(lambda r: r.decide(enrollment, True))
    out.print(f"approved {enrollment}: node {node}")


def reject(
    enrollment: Annotated[str, typer.Argument(help="enrollment id (see `fazai nodes pending`)")],
) -> None:
    """Reject a pending enrollment."""
    node = _with_registry(lambda r: r.decide(enrollment, False))
    out.print(f"rejected {enrollment}: node {node}")


def revoke(
    node: Annotated[str, typer.Argument(help="node name")],
    reason: Annotated[str, typer.Option("--reason", help="kept with the revocation")] = "revoked by operator",
) -> None:
    """Revoke every certificate of a node: refused at its next handshake, live connection closed."""
    n = _with_registry(lambda r: r.revoke(node, reason))
    out.print(
        f"revoked {node} ({n} certificate{'s' if n != 1 else ''}); a running fazaid closes its connection"
    )


def add_commands(nodes: typer.Typer) -> None:
    """Put the enrollment commands on a ``nodes`` Typer group (once: the app may be built again)."""
    if any(c.callback is token for c in nodes.registered_commands):
        return
    nodes.command("token")(token)
    nodes.command("pending")(pending)
    nodes.command("approve")(approve)
    nodes.command("reject")(reject)
    nodes.command("revoke")(revoke)


def register(app: typer.Typer) -> None:
    """Join the registered ``nodes`` group, or create it."""
    for group in app.registered_groups:
        if group.name == "nodes" and group.typer_instance is not None:
            add_commands(group.typer_instance)
            return
    nodes = typer.Typer(help="Fleet nodes: enrollment and inventory.", no_args_is_help=True)
    add_commands(nodes)
    app.add_typer(nodes, name="nodes")
