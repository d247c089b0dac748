"""``fazai opnsense …``: register firewalls and manage them through the OPNsense REST API."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from fazai.opnsense.diff import Result
from fazai.opnsense.errors import OPNsenseError
from fazai.opnsense.firewall import APPLY_PATHS, Firewall
from fazai.opnsense.store import FirewallEntry, FirewallStore, StoreError, open_firewall

T = TypeVar("T")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    help="Manage OPNsense firewalls through their REST API (nothing is installed on them).",
    no_args_is_help=True,
)
alias_app = typer.Typer(help="Firewall aliases (and live pf tables).", no_args_is_help=True)
rule_app = typer.Typer(help="Filter rules, identified by their description.", no_args_is_help=True)
backup_app = typer.Typer(help="config.xml backups kept on this machine.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")
app.add_typer(rule_app, name="rule")
app.add_typer(backup_app, name="backup")

FW = typer.Option(None, "--firewall", "-f", help="registered firewall (default: the only one)")
DRY = typer.Option(False, "--dry-run", "-n", help="show the diff, change nothing")
JSON = typer.Option(False, "--json", help="machine-readable output")


def register(root: typer.Typer) -> None:
    """Attach ``fazai opnsense``."""
    root.add_typer(app, name="opnsense")


def _store() -> FirewallStore:
    from fazai.cli.main import settings_or_exit
    from fazai.vault import resolver

    settings = settings_or_exit()
    return FirewallStore(settings.paths.state_dir, resolver(settings))


def _run(coro: Awaitable[T]) -> T:
    """Run a coroutine; turn connector errors into a clear message and exit 1."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except (OPNsenseError, StoreError, ValueError, KeyError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e


def _with_fw(name: str | None, fn: Callable[[Firewall], Awaitable[T]]) -> T:
    from fazai.cli.main import settings_or_exit

    never = tuple(settings_or_exit().opnsense.never_block)

    async def go() -> T:
        fw = await open_firewall(_store(), name, never_block=never)
        try:
            return await fn(fw)
        finally:
            await fw.client.aclose()

    return _run(go())


def _print_result(res: Result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(res.to_dict(), indent=2, default=str))
        return
    for c in res.changes:
        style = "dim" if not c.changed else "yellow" if c.dry_run else "green"
        out.print(f"[{style}]{c.summary()}[/]", highlight=False)
        if c.changed and c.action in ("create", "delete") and not as_json:
            for k, v in (c.after or c.before or {}).items():
                out.print(f"    {k}: {v!r}", highlight=False)
    for n in res.notes:
        out.print(f"[cyan]note:[/] {n}", highlight=False)
    status = res.data.get("status")
    if status and status != "applied":
        err.print(f"[red]apply status: {status}[/]")
        raise typer.Exit(1)


def _print_rows(rows: list[dict[str, Any]], cols: list[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        out.print("[dim](none)[/]")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))[:60]) for r in rows)) for c in cols}
    out.print("  ".join(c.ljust(widths[c]) for c in cols), style="bold", highlight=False)
    for r in rows:
        out.print(
            "  ".join(str(r.get(c, ""))[:60].replace("\n", " ").ljust(widths[c]) for c in cols),
            highlight=False,
        )


def parse_ttl(text: str | None) -> float | None:
    """``90``, ``90s``, ``15m``, ``2h``, ``7d`` → seconds."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise typer.BadParameter(f"{text!r}: use a number of seconds or 30m / 2h / 7d")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


# ---------------------------------------------------------------------- registry
@app.command("add")
def add(
    name: str = typer.Argument(..., help="a short name for this firewall"),
    url: str = typer.Argument(..., help="https://firewall[:port]"),
    ca_file: Path | None = typer.Option(
        None, "--ca-file", help="CA bundle that signed the firewall's certificate"
    ),
    insecure: bool = typer.Option(False, "--insecure", help="do not verify TLS (not recommended)"),
    client_cert: Path | None = typer.Option(None, "--client-cert", help="client certificate for mTLS"),
    client_key: Path | None = typer.Option(None, "--client-key", help="key of the client certificate"),
    timeout: float = typer.Option(30.0, "--timeout", help="seconds per request"),
    check: bool = typer.Option(True, "--check/--no-check", help="connect once and show the version"),
    apikey_file: Path | None = typer.Option(
        None, "--apikey-file", help="the apikey.txt downloaded from OPNsense (key=… / secret=…)"
    ),
) -> None:
    """Register a firewall. Key/secret: --apikey-file, OPNSENSE_KEY/OPNSENSE_SECRET, or a hidden prompt."""
    from_file = _read_apikey_file(apikey_file) if apikey_file else {}
    key = from_file.get("key") or os.environ.get("OPNSENSE_KEY") or typer.prompt("API key", hide_input=True)
    secret = (
        from_file.get("secret")
        or os.environ.get("OPNSENSE_SECRET")
        or typer.prompt("API secret", hide_input=True)
    )
    for p in (ca_file, client_cert, client_key):
        if p is not None and not p.is_file():
            err.print(f"[red]error:[/] {p} does not exist")
            raise typer.Exit(2)
    entry = FirewallEntry(
        name=name,
        url=url,
        verify_tls=not insecure,
        ca_file=str(ca_file.resolve()) if ca_file else None,
        client_cert=str(client_cert.resolve()) if client_cert else None,
        client_key=str(client_key.resolve()) if client_key else None,
        timeout_s=timeout,
    )
    store = _store()
    try:
        store.add(entry, key.strip(), secret.strip())
    except StoreError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e
    out.print(f"registered {name} ({url}); secret stored in {store.secrets} (mode 0600)", highlight=False)
    if check:
        caps = _with_fw(name, lambda fw: fw.client.capabilities())
        out.print(f"connected: OPNsense {caps.version}", highlight=False)


def _read_apikey_file(path: Path) -> dict[str, str]:
    """Parse OPNsense's apikey.txt (ini style ``key=…``/``secret=…``; values may contain ``=``)."""
    if not path.is_file():
        err.print(f"[red]error:[/] {path} does not exist")
        raise typer.Exit(2)
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() in ("key", "secret"):
            values[name.strip()] = value.strip()
    if set(values) != {"key", "secret"}:
        err.print(
            f"[red]error:[/] {path} has no key=… and secret=… lines (the apikey.txt from OPNsense has both)"
        )
        raise typer.Exit(2)
    return values


@app.command("list")
def list_(as_json: bool = JSON) -> None:
    """Registered firewalls (no secrets)."""
    try:
        entries = _store().list()
    except StoreError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    rows = [
        {
            "name": e.name,
            "url": e.url,
            "tls": "verify" if e.verify_tls else "INSECURE",
            "ca_file": e.ca_file or "",
        }
        for e in entries
    ]
    _print_rows(rows, ["name", "url", "tls", "ca_file"], as_json)


@app.command("remove")
def remove(name: str) -> None:
    """Forget a firewall and its secret."""
    try:
        _store().remove(name)
    except StoreError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    out.print(f"removed {name}")


@app.command("status")
def status(firewall: str | None = FW, as_json: bool = JSON) -> None:
    """Version, capabilities, firmware, gateways and services."""

    async def go(fw: Firewall) -> dict[str, Any]:
        caps = await fw.client.capabilities()
        fs = await fw.firmware_status()
        return {
            "url": fw.client.url,
            "capabilities": caps.as_dict(),
            "firmware": {"status": fs.get("status"), "message": fs.get("status_msg")},
            "gateways": await fw.gateways(),
            "services": await fw.services(),
        }

    data = _with_fw(firewall, go)
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    c = data["capabilities"]
    out.print(f"[bold]{data['url']}[/] OPNsense {c['version']}", highlight=False)
    out.print("capabilities: " + ", ".join(k for k, v in c.items() if v is True), highlight=False)
    out.print(f"firmware: {data['firmware']['status']} — {data['firmware']['message']}", highlight=False)
    for g in data["gateways"]:
        out.print(
            f"gateway {g.get('name')}: {g.get('status_translated')} ({g.get('delay')}, loss {g.get('loss')})",
            highlight=False,
        )
    running = [s["name"] for s in data["services"] if str(s.get("running")) == "1"]
    stopped = [s["name"] for s in data["services"] if str(s.get("running")) != "1"]
    out.print(
        f"services running: {', '.join(running) or '-'}; stopped: {', '.join(stopped) or '-'}",
        highlight=False,
    )


# ---------------------------------------------------------------------- aliases
@alias_app.command("list")
def alias_list(firewall: str | None = FW, as_json: bool = JSON) -> None:
    """List aliases."""
    rows = _with_fw(firewall, lambda fw: fw.list_aliases())
    _print_rows(rows, ["name", "type", "content", "description"], as_json)


@alias_app.command("ensure")
def alias_ensure(
    name: str,
    type_: str = typer.Option(
        "host", "--type", "-t", help="host, network, port, url, urltable, geoip, external…"
    ),
    content: list[str] = typer.Option([], "--content", "-c", help="one entry per option (repeat)"),
    description: str = typer.Option("", "--description", "-d"),
    apply: bool = typer.Option(False, "--apply", help="make it live (alias reconfigure)"),
    firewall: str | None = FW,
    dry_run: bool = DRY,
    as_json: bool = JSON,
) -> None:
    """Create or update an alias so it has exactly this content."""

    async def go(fw: Firewall) -> Result:
        res = await fw.ensure_alias(name, type_, content, description, dry_run=dry_run)
        if apply and res.changed:
            res.changes += (await fw.apply(["alias"], dry_run=dry_run)).changes
        return res

    _print_result(_with_fw(firewall, go), as_json)


@alias_app.command("delete")
def alias_delete(
    name: str,
    apply: bool = typer.Option(False, "--apply"),
    firewall: str | None = FW,
    dry_run: bool = DRY,
    as_json: bool = JSON,
) -> None:
    """Delete an alias (refused while a rule uses it)."""

    async def go(fw: Firewall) -> Result:
        res = await fw.delete_alias(name, dry_run=dry_run)
        if apply and res.changed:
            res.changes += (await fw.apply(["alias"], dry_run=dry_run)).changes
        return res

    _print_result(_with_fw(firewall, go), as_json)


@alias_app.command("show")
def alias_show(name: str, firewall: str | None = FW, as_json: bool = JSON) -> None:
    """Addresses currently in the alias' live pf table."""
    rows = [{"address": a} for a in _with_fw(firewall, lambda fw: fw.alias_table(name))]
    _print_rows(rows, ["address"], as_json)


@alias_app.command("add-ip")
def alias_add_ip(
    name: str, address: str, firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON
) -> None:
    """Add an address to the live table (host/network aliases also keep it in the config)."""
    _print_result(_with_fw(firewall, lambda fw: fw.alias_add(name, address, dry_run=dry_run)), as_json)


@alias_app.command("remove-ip")
def alias_remove_ip(
    name: str, address: str, firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON
) -> None:
    """Remove an address from the live table."""
    _print_result(_with_fw(firewall, lambda fw: fw.alias_remove(name, address, dry_run=dry_run)), as_json)


@alias_app.command("flush")
def alias_flush(name: str, firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON) -> None:
    """Empty the live pf table (the config is unchanged)."""
    _print_result(_with_fw(firewall, lambda fw: fw.alias_flush(name, dry_run=dry_run)), as_json)


# ---------------------------------------------------------------------- rules
@rule_app.command("list")
def rule_list(
    search: str = typer.Option("", "--search", "-s"), firewall: str | None = FW, as_json: bool = JSON
) -> None:
    """List filter rules."""
    rows = _with_fw(firewall, lambda fw: fw.list_rules(search))
    _print_rows(
        rows,
        [
            "sequence",
            "enabled",
            "action",
            "interface",
            "source_net",
            "destination_net",
            "destination_port",
            "description",
        ],
        as_json,
    )


@rule_app.command("ensure")
def rule_ensure(
    description: str = typer.Argument(..., help="the rule's stable key"),
    action: str = typer.Option("pass", "--action", help="pass, block or reject"),
    interface: str = typer.Option(
        "", "--interface", "-i", help="comma list (wan,lan,opt1); empty = floating"
    ),
    direction: str = typer.Option("in", "--direction"),
    ipprotocol: str = typer.Option("inet", "--ipprotocol", help="inet, inet6, inet46"),
    protocol: str = typer.Option("any", "--protocol", "-p", help="any, TCP, UDP, TCP/UDP, ICMP…"),
    source: str = typer.Option("any", "--source", help="any, CIDR, IP or alias (comma list)"),
    source_port: str = typer.Option("", "--source-port"),
    destination: str = typer.Option("any", "--destination"),
    destination_port: str = typer.Option("", "--destination-port", "--dport"),
    log: bool = typer.Option(False, "--log/--no-log"),
    sequence: int | None = typer.Option(None, "--sequence"),
    enabled: bool = typer.Option(True, "--enabled/--disabled"),
    apply: bool = typer.Option(False, "--apply", help="make it live with safe apply (savepoint + rollback)"),
    firewall: str | None = FW,
    dry_run: bool = DRY,
    as_json: bool = JSON,
) -> None:
    """Create or update the rule with this description."""
    fields: dict[str, Any] = dict(
        action=action,
        interface=interface,
        direction=direction,
        ipprotocol=ipprotocol,
        protocol=protocol,
        source_net=source,
        source_port=source_port,
        destination_net=destination,
        destination_port=destination_port,
        log=log,
        enabled=enabled,
    )
    if sequence is not None:
        fields["sequence"] = sequence

    async def go(fw: Firewall) -> Result:
        if not apply:
            return await fw.ensure_rule(description, dry_run=dry_run, **fields)

        async def change() -> Result:
            return await fw.ensure_rule(description, dry_run=dry_run, **fields)

        return await fw.safe_apply(change=change, dry_run=dry_run)

    _print_result(_with_fw(firewall, go), as_json)


def _toggle(description: str, enabled: bool, firewall: str | None, dry_run: bool, as_json: bool) -> None:
    _print_result(
        _with_fw(firewall, lambda fw: fw.set_rule_enabled(description, enabled, dry_run=dry_run)), as_json
    )


@rule_app.command("enable")
def rule_enable(
    description: str, firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON
) -> None:
    """Enable a rule (staged; run `apply`)."""
    _toggle(description, True, firewall, dry_run, as_json)


@rule_app.command("disable")
def rule_disable(
    description: str, firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON
) -> None:
    """Disable a rule (staged; run `apply`)."""
    _toggle(description, False, firewall, dry_run, as_json)


@rule_app.command("delete")
def rule_delete(
    description: str, firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON
) -> None:
    """Delete a rule (staged; run `apply`)."""
    _print_result(_with_fw(firewall, lambda fw: fw.delete_rule(description, dry_run=dry_run)), as_json)


@rule_app.command("move")
def rule_move(
    description: str,
    before: str = typer.Option(..., "--before", help="description of the rule to move before"),
    firewall: str | None = FW,
    dry_run: bool = DRY,
    as_json: bool = JSON,
) -> None:
    """Move a rule before another one."""
    _print_result(_with_fw(firewall, lambda fw: fw.move_rule(description, before, dry_run=dry_run)), as_json)


# ---------------------------------------------------------------------- apply / block
@app.command("apply")
def apply_cmd(
    module: list[str] = typer.Option(
        ["alias", "filter"], "--module", "-m", help=f"one of {', '.join(APPLY_PATHS)} (repeat)"
    ),
    no_rollback: bool = typer.Option(
        False, "--no-rollback", help="plain filter apply, without savepoint/verify"
    ),
    firewall: str | None = FW,
    dry_run: bool = DRY,
    as_json: bool = JSON,
) -> None:
    """Make staged changes live; filter rules go through safe apply unless --no-rollback."""

    async def go(fw: Firewall) -> Result:
        res = Result()
        plain = [m for m in module if m not in ("alias", "filter") or no_rollback]
        if plain:
            res = await fw.apply(plain, dry_run=dry_run)
        if "filter" in module and not no_rollback:
            safe = await fw.safe_apply(dry_run=dry_run, aliases="alias" in module)
            res.changes += safe.changes
            res.notes += safe.notes
            res.data.update(safe.data)
        elif "alias" in module and not no_rollback:
            res.changes += (await fw.apply(["alias"], dry_run=dry_run)).changes
        return res

    _print_result(_with_fw(firewall, go), as_json)


@app.command("block")
def block(
    ip: str = typer.Argument(..., help="address or network, e.g. 203.0.113.7 or 203.0.113.0/24"),
    reason: str = typer.Option(..., "--reason", "-r", help="why (kept with the block)"),
    ttl: str | None = typer.Option(None, "--ttl", help="temporary: 30m, 2h, 7d"),
    interface: str = typer.Option("wan", "--interface", "-i", help="interface of the block rule (first use)"),
    firewall: str | None = FW,
    dry_run: bool = DRY,
    as_json: bool = JSON,
) -> None:
    """Block an address in the fazai_block alias (created with its rule on first use)."""
    seconds = parse_ttl(ttl)
    _print_result(
        _with_fw(firewall, lambda fw: fw.block_ip(ip, reason, seconds, interface=interface, dry_run=dry_run)),
        as_json,
    )


@app.command("unblock")
def unblock(ip: str, firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON) -> None:
    """Remove an address from fazai_block."""
    _print_result(_with_fw(firewall, lambda fw: fw.unblock_ip(ip, dry_run=dry_run)), as_json)


@app.command("blocks")
def blocks(
    expire: bool = typer.Option(False, "--expire", help="remove expired temporary blocks first"),
    firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON,
) -> None:  # fmt: skip
    """List blocked addresses (with reason and expiry); --expire removes the expired ones."""

    async def go(fw: Firewall) -> tuple[Result, list[dict[str, Any]]]:
        res = await fw.expire_blocks(dry_run=dry_run) if expire else Result()
        return res, await fw.list_blocks()

    res, rows = _with_fw(firewall, go)
    if res.changes and not as_json:
        _print_result(res, False)
    _print_rows(rows, ["address", "reason", "expires"], as_json)


@app.command("journal")
def journal(firewall: str | None = FW, as_json: bool = JSON) -> None:
    """Runtime changes FazAI made (blocks, table edits) and how to undo each."""

    async def go(fw: Firewall) -> list[dict[str, Any]]:
        return [
            {**i, "undo": (i.get("undo") or {}).get("cli") or (i.get("undo") or {}).get("op") or ""}
            for i in fw.journal.list()
        ]

    _print_rows(_with_fw(firewall, go), ["id", "action", "target", "undo", "undone"], as_json)


@app.command("undo")
def undo(
    entry: str = typer.Argument("last", help="journal id (`fazai opnsense journal`) or 'last'"),
    firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON,
) -> None:  # fmt: skip
    """Undo a journalled runtime change (a block, an alias table add/remove/flush)."""
    _print_result(_with_fw(firewall, lambda fw: fw.undo(entry, dry_run=dry_run)), as_json)


# ---------------------------------------------------------------------- alerts
@app.command("alerts")
def alerts(
    limit: int = typer.Option(20, "--limit", "-l"),
    search: str = typer.Option("", "--search", "-s", help="matches signature, action, source or destination"),
    firewall: str | None = FW,
    as_json: bool = JSON,
) -> None:
    """Newest Suricata alerts from the firewall (ids/service/queryAlerts)."""
    items = _with_fw(firewall, lambda fw: fw.query_alerts(limit, search))
    if as_json:
        print(json.dumps([a.event_data() for a in items], indent=2))
        return
    for a in items:
        out.print(a.one_line(), highlight=False)
    if not items:
        out.print("[dim](no alerts)[/]")


# ---------------------------------------------------------------------- backups
@backup_app.command("pull")
def backup_pull(
    note: str = typer.Option("", "--note"), firewall: str | None = FW, as_json: bool = JSON
) -> None:
    """Download config.xml and keep it (time + SHA-256)."""
    res = _with_fw(firewall, lambda fw: fw.backup(note))
    if as_json:
        print(json.dumps(res.to_dict(), indent=2))
        return
    _print_result(res, False)
    out.print(f"file: {res.data['file']}\nsha256: {res.data['sha256']}", highlight=False)


def _backups(firewall: str | None):
    from fazai.opnsense.backups import BackupStore
    from fazai.opnsense.store import resolve_name

    store = _store()
    try:
        name = resolve_name(store, firewall)
    except StoreError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    return BackupStore(store.firewall_dir(name) / "backups")


@backup_app.command("list")
def backup_list(firewall: str | None = FW, as_json: bool = JSON) -> None:
    """Backups kept on this machine, oldest first."""
    import time

    rows = [
        {
            "id": b.id,
            "time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(b.time)),
            "size": b.size,
            "sha256": b.sha256[:16],
            "note": b.note,
        }
        for b in _backups(firewall).list()
    ]
    _print_rows(rows, ["id", "time", "size", "sha256", "note"], as_json)


@backup_app.command("diff")
def backup_diff(
    a: str = typer.Argument("previous"), b: str = typer.Argument("latest"), firewall: str | None = FW
) -> None:
    """Unified diff of two backups (ids, unique prefixes, `previous`, `latest`)."""
    text = _run(_adiff(_backups(firewall), a, b))
    print(text or "(identical)", end="" if text else "\n")


async def _adiff(store: Any, a: str, b: str) -> str:
    return store.diff(a, b)


@backup_app.command("show")
def backup_show(ident: str = typer.Argument("latest"), firewall: str | None = FW) -> None:
    """Print a stored config.xml."""
    store = _backups(firewall)
    print(_run(_aread(store, ident)), end="")


async def _aread(store: Any, ident: str) -> str:
    return store.read(ident)


# The firewall-as-a-system commands (carp, firmware, backup history/revert, service) live in their own
# module; importing it adds them to this command group.
from fazai.cli import opnsense_ops as _ops  # noqa: E402,F401
