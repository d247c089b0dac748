"""``fazai alerts …``: Suricata IDS alerts from an eve.json file or from a firewall's API."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import typer
from rich.console import Console

from fazai.opnsense.alerts import SuricataAlert, tail_eve

app = typer.Typer(help="Suricata IDS alerts.", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def register(root: typer.Typer) -> None:
    """Attach ``fazai alerts``."""
    root.add_typer(app, name="alerts")


def _emit(a: SuricataAlert, as_json: bool) -> None:
    if as_json:
        print(json.dumps(a.event_data()), flush=True)
    else:
        out.print(a.one_line(), highlight=False)


@app.command("tail")
def tail(
    file: Path | None = typer.Option(None, "--file", help="an eve.json to follow"),
    firewall: str | None = typer.Option(None, "--firewall", "-f", help="poll this firewall's queryAlerts"),
    from_start: bool = typer.Option(False, "--from-start", help="also show what the file already holds"),
    follow: bool = typer.Option(True, "--follow/--no-follow"),
    interval: float = typer.Option(5.0, "--interval", help="seconds between firewall polls"),
    as_json: bool = typer.Option(False, "--json", help="one JSON alert per line"),
) -> None:
    """Follow alerts from --file eve.json or from --firewall NAME (one of the two)."""
    if (file is None) == (firewall is None):
        err.print("[red]error:[/] give exactly one of --file eve.json or --firewall NAME")
        raise typer.Exit(2)
    if file is not None and not file.exists():
        err.print(f"[red]error:[/] {file} does not exist (OPNsense writes /var/log/suricata/eve.json)")
        raise typer.Exit(2)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _tail_file(file, from_start, follow, as_json)
            if file
            else _tail_fw(firewall, follow, interval, as_json)
        )


async def _tail_file(file: Path, from_start: bool, follow: bool, as_json: bool) -> None:
    async for a in tail_eve(file, from_start=from_start, follow=follow):
        _emit(a, as_json)


async def _tail_fw(name: str | None, follow: bool, interval: float, as_json: bool) -> None:
    from fazai.cli.main import settings_or_exit
    from fazai.opnsense.errors import OPNsenseError
    from fazai.opnsense.store import FirewallStore, StoreError, open_firewall

    try:
        fw = await open_firewall(FirewallStore(settings_or_exit().paths.state_dir), name)
    except (OPNsenseError, StoreError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    seen: set[tuple[str | None, int | None]] = set()
    try:
        while True:
            try:
                batch = await fw.query_alerts(100)
            except OPNsenseError as e:
                err.print(f"[yellow]warning:[/] {e}")
                batch = []
            for a in reversed(batch):  # oldest first
                key = (a.fileid, a.filepos)
                if key not in seen:
                    seen.add(key)
                    _emit(a, as_json)
            if not follow:
                return
            await asyncio.sleep(interval)
    finally:
        await fw.client.aclose()
