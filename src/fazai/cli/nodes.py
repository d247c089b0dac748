"""``fazai nodes list|show|add|tag|untag|rm``: the inventory (docs/inventory.md).

Through the daemon's ``/nodes`` when one answers, otherwise on the store directly. ``--json`` prints
machine-readable output. Enrollment commands (``token``, ``approve``…) join this same group.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fazai.cli.client_types import ClientError

out = Console()
err = Console(stderr=True)

nodes_app = typer.Typer(help="Fleet nodes: the inventory (and enrollment).", no_args_is_help=True)

_STATUS_COLOR = {
    "online": "green",
    "seen": "green",
    "offline": "red",
    "never seen": "yellow",
    "unknown": "dim",
}


def _call(fn: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``fn(client)`` on the daemon's client or the store; exit 1 with the message on error."""
    from fazai.cli.agent import _settings
    from fazai.cli.client import connect

    async def go() -> Any:
        client = await connect(_settings(), runner=False)
        try:
            return await fn(client)
        finally:
            await client.aclose()

    try:
        return asyncio.run(go())
    except ClientError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e


def _heard(node: dict[str, Any]) -> str:
    ts = node.get("last_heartbeat")
    return ts[:19].replace("T", " ") if ts else "-"


def _table(rows: list[dict[str, Any]]) -> Table:
    t = Table(box=None, pad_edge=False)
    for col in (
        "name",
        "transport",
        "address",
        "site",
        "group",
        "tags",
        "labels",
        "status",
        "heard",
        "version",
    ):
        t.add_column(col, no_wrap=col in ("name", "address", "heard"))
    for n in rows:
        addr = n.get("address") or "-"
        if n.get("port"):
            addr += f":{n['port']}"
        if n.get("user"):
            addr = f"{n['user']}@{addr}"
        st = n.get("status", "")
        t.add_row(
            n["name"], n["transport"], addr, n.get("site") or "-", n.get("group") or "-",
            ",".join(n.get("tags") or []) or "-",
            ",".join(f"{k}={v}" for k, v in sorted((n.get("labels") or {}).items())) or "-",
            f"[{_STATUS_COLOR.get(st, 'white')}]{st}[/]", _heard(n), n.get("version") or "-",
        )  # fmt: skip
    return t


def _split_tags(items: list[str]) -> tuple[list[str], dict[str, str]]:
    tags = [i for i in items if "=" not in i]
    labels = dict(i.split("=", 1) for i in items if "=" in i)
    return tags, labels


@nodes_app.command("list")
def list_cmd(
    selector: Annotated[
        str | None, typer.Option("--selector", "-s", help="only these nodes, e.g. 'site=sp,tag=web'")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the inventory's nodes (by name)."""
    rows = _call(lambda c: c.nodes("list", selector))
    if json_:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        err.print(
            "no nodes"
            + (f" match {selector!r}" if selector else ": add one with `fazai nodes add NAME --ssh HOST`")
        )
        return
    out.print(_table(rows))


@nodes_app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="node name")],
    json_: Annotated[bool, typer.Option("--json", help="print JSON (with the facts snapshot)")] = False,
) -> None:
    """Show one node, with its last facts snapshot."""
    node = _call(lambda c: c.nodes("show", name))
    if json_:
        print(json.dumps(node, indent=2))
        return
    out.print(_table([node]))
    facts = node.get("facts")
    if facts:
        from fazai.facts import Facts

        out.print(f"\n[bold]facts[/] (collected {node.get('facts_at', '?')[:19].replace('T', ' ')})")
        print(Facts.model_validate(facts).as_prompt(max_chars=4000))
    else:
        err.print("no facts snapshot yet (`fazai ssh check NAME` collects one for an ssh node)")


@nodes_app.command("add")
def add_cmd(
    name: Annotated[str, typer.Argument(help="node name, e.g. web-01")],
    ssh: Annotated[
        str | None, typer.Option("--ssh", help="reach it over SSH at this host or address")
    ] = None,
    local: Annotated[bool, typer.Option("--local", help="this machine")] = False,
    port: Annotated[int | None, typer.Option("--port", help="SSH port (default 22)")] = None,
    user: Annotated[str | None, typer.Option("--user", help="SSH user (default [ssh] user)")] = None,
    org: Annotated[str, typer.Option("--org", help="organisation")] = "default",
    site: Annotated[str | None, typer.Option("--site", help="site, e.g. sp")] = None,
    group: Annotated[str | None, typer.Option("--group", help="group within the site")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="a tag, or key=value for a label")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Register an ssh or local node (agent nodes register themselves when they enroll)."""
    if bool(ssh) == local:
        err.print("[red]error:[/] say how to reach the node: --ssh HOST or --local (one of them)")
        raise typer.Exit(2)
    tags, labels = _split_tags(tag or [])
    body = {"name": name, "transport": "ssh" if ssh else "local", "address": ssh, "port": port, "user": user,
            "org": org, "site": site, "group": group, "tags": tags, "labels": labels}  # fmt: skip
    node = _call(lambda c: c.nodes("add", body=body))
    if json_:
        print(json.dumps(node, indent=2))
        return
    out.print(_table([node]))
    if ssh:
        err.print(f"[dim]next: `fazai ssh trust {ssh}{f' --port {port}' if port else ''}` if its host key is "
                  f"not trusted yet, then `fazai ssh check {name}`[/]")  # fmt: skip


@nodes_app.command("tag")
def tag_cmd(
    name: Annotated[str, typer.Argument(help="node name")],
    tags: Annotated[list[str], typer.Argument(help="tags to add; key=value sets a label")],
    json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Add tags (``web``) or set labels (``env=prod``)."""
    add, labels = _split_tags(tags)
    node = _call(lambda c: c.nodes("patch", name, {"add_tags": add, "labels": labels}))
    print(json.dumps(node, indent=2)) if json_ else out.print(_table([node]))


@nodes_app.command("untag")
def untag_cmd(
    name: Annotated[str, typer.Argument(help="node name")],
    tags: Annotated[list[str], typer.Argument(help="tags to remove, or label keys")],
    json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Remove tags, or labels by key."""

    async def go(c: Any) -> Any:
        node = await c.nodes("show", name)
        labels = {t.split("=", 1)[0]: None for t in tags if t.split("=", 1)[0] in (node.get("labels") or {})}
        remove = [t for t in tags if t not in labels]
        return await c.nodes("patch", name, {"remove_tags": remove, "labels": labels})

    node = _call(go)
    print(json.dumps(node, indent=2)) if json_ else out.print(_table([node]))


@nodes_app.command("rm")
def rm_cmd(
    name: Annotated[str, typer.Argument(help="node name")],
    json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Remove a node from the inventory (its sessions stay in the log)."""
    res = _call(lambda c: c.nodes("remove", name))
    print(json.dumps(res)) if json_ else err.print(f"removed {name}")


def register(app: typer.Typer) -> None:
    """Attach ``fazai nodes`` (or join the group if another module made it first)."""
    for group in app.registered_groups:
        if group.name == "nodes" and group.typer_instance is not None:
            target = group.typer_instance
            if target is nodes_app:  # registered already (the app is built again in-process)
                return
            have = {c.callback for c in target.registered_commands}
            # A copy: appending while iterating the same list would never end.
            target.registered_commands.extend(
                c for c in list(nodes_app.registered_commands) if c.callback not in have
            )
            return
    app.add_typer(nodes_app, name="nodes")
