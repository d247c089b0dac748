"""``fazai ssh trust|check|keygen``: host keys, login checks and the login key of ssh nodes.

``trust`` is the only way a host key enters FazAI's known_hosts: it shows the key's fingerprint and
records it after the operator confirms (interactively, or ``--fingerprint`` checked out of band).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)

ssh_app = typer.Typer(
    help="SSH nodes: trust host keys, check logins, make the login key.", no_args_is_help=True
)


def _settings() -> Any:
    from fazai.cli.main import settings_or_exit

    return settings_or_exit()


@ssh_app.command("trust")
def trust_cmd(
    host: Annotated[str, typer.Argument(help="host name or address, as the node's address")],
    port: Annotated[int, typer.Option("--port", "-p", help="SSH port")] = 22,
    fingerprint: Annotated[
        str | None, typer.Option("--fingerprint", help="expected SHA256:… (checked on the machine's console)")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="trust the presented key without asking")] = False,
) -> None:
    """Record the host key HOST presents in FazAI's known_hosts, after you confirm its fingerprint."""
    from fazai.targets.base import TargetError
    from fazai.targets.known_hosts import add_known_host, fetch_host_key, host_pattern
    from fazai.targets.known_hosts import fingerprint as fp

    settings = _settings()
    path = settings.ssh_known_hosts
    try:
        key = asyncio.run(fetch_host_key(host, port, settings.ssh.connect_timeout_s))
    except TargetError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    seen = fp(key)
    out.print(f"{host_pattern(host, port)} presents {key.get_algorithm()} [bold]{seen}[/]")
    if fingerprint is not None:
        if fingerprint.strip() != seen:
            err.print(f"[red]refused:[/] it does not match the expected {fingerprint}; nothing was trusted")
            raise typer.Exit(1)
    elif not yes:
        if not sys.stdin.isatty():
            err.print(
                "[red]refused:[/] not a terminal to confirm on: pass --fingerprint SHA256:… (as shown by "
                "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the machine) or --yes"
            )
            raise typer.Exit(1)
        if input("trust this key? [y/N] ").strip().lower() not in ("y", "yes"):
            err.print("not trusted")
            raise typer.Exit(1)
    try:
        added = add_known_host(path, host, port, key)
    except TargetError as e:
        err.print(f"[red]refused:[/] {e}")
        raise typer.Exit(1) from e
    err.print(f"{'trusted' if added else 'already trusted'}: {host_pattern(host, port)} in {path}")


@ssh_app.command("check")
def check_cmd(
    node: Annotated[str, typer.Argument(help="node name (see `fazai nodes list`)")],
    facts: Annotated[
        bool, typer.Option("--facts/--no-facts", help="collect and store a facts snapshot")
    ] = True,
    json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Log in to NODE (host key checked), run a command, and store its facts snapshot."""
    result = asyncio.run(_check(node, facts))
    if json_:
        print(json.dumps(result, indent=2))
    elif result["ok"]:
        f = result.get("facts_summary") or ""
        out.print(
            f"[green]{node}: ok[/] — {result['where']}, connect {result['connect_s']:.2f}s, "
            f"command {result['command_s']:.3f}s; {result['uname']}" + (f"\n{f}" if f else "")
        )
    else:
        err.print(f"[red]{node}: {result['status']}[/] — {result['error']}")
    raise typer.Exit(0 if result["ok"] else 1)


async def _check(name: str, with_facts: bool) -> dict[str, Any]:
    from fazai.facts import collect_facts
    from fazai.store import Store
    from fazai.store.inventory import Inventory
    from fazai.targets.base import TargetError
    from fazai.targets.known_hosts import host_pattern
    from fazai.targets.nodes import NodeTargets, NodeUnavailable
    from fazai.targets.ssh import SSHTarget

    settings = _settings()
    store = await Store.open(settings.database_url)
    pool = NodeTargets(settings, Inventory(store.engine))
    res: dict[str, Any] = {"node": name, "ok": False}
    try:
        t0 = time.monotonic()
        try:
            node, target = await pool.target_for(name)
        except NodeUnavailable as e:
            return {**res, "status": e.reason, "error": str(e)}
        res["connect_s"] = round(time.monotonic() - t0, 3)
        res["where"] = (
            f"{target.user}@{host_pattern(target.host, target.port)}"
            if isinstance(target, SSHTarget)
            else node.transport
        )
        t1 = time.monotonic()
        try:
            r = await target.run("uname -srm", timeout=settings.ssh.connect_timeout_s)
        except TargetError as e:
            return {**res, "status": "failed", "error": str(e)}
        res.update(command_s=round(time.monotonic() - t1, 3), uname=r.stdout.strip(), ok=r.ok, status="ok")
        if not r.ok:
            res.update(status="failed", error=f"exit {r.exit_code}: {r.stderr.strip()[:200]}")
        if with_facts and r.ok:
            f = await collect_facts(target, budget_s=10, target_name=name)
            await pool.inventory.set_facts(name, f.model_dump(mode="json"))
            res["facts_summary"] = f.as_prompt(max_chars=600)
            res["facts_errors"] = f.errors
        return res
    finally:
        await pool.aclose()
        await store.close()


@ssh_app.command("keygen")
def keygen_cmd() -> None:
    """Make FazAI's SSH login key ([ssh] key) if it does not exist, and print its public half."""
    import asyncssh

    path = _settings().ssh_key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519", comment="fazai")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.export_private_key())
        path.with_name(path.name + ".pub").write_bytes(key.export_public_key())
        err.print(f"created {path}")
    pub = asyncssh.read_private_key(str(path)).export_public_key().decode().strip()
    print(pub)
    err.print("[dim]add that line to ~/.ssh/authorized_keys of the login user on each ssh node[/]")


def register(app: typer.Typer) -> None:
    """Attach ``fazai ssh``."""
    app.add_typer(ssh_app, name="ssh")
