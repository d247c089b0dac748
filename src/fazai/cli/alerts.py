"""``fazai alerts …``: Suricata IDS alerts from an eve.json file or from a firewall's API."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
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
    as_json: bool = typer.Option(False, "--json", help="one JSON alert (or, with --respond, event) per line"),
    respond: bool = typer.Option(
        False, "--respond", help="start an agent session for each alert (it may block the source)"
    ),
    severity: int = typer.Option(
        2, "--severity", min=1, max=255, help="--respond: only alerts this severe or more (1 = most)"
    ),
    cooldown: float = typer.Option(
        600.0, "--cooldown", min=0, help="--respond: seconds before the same source gets another session"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="--respond: approve within policy without asking"),
    max_sessions: int | None = typer.Option(
        None, "--max-sessions", min=1, help="--respond: stop after this many sessions"
    ),
    on: str | None = typer.Option(
        None, "--on", help="--respond: the firewall the agent acts on (default: the only registered one)"
    ),
) -> None:
    """Follow alerts from --file eve.json or from --firewall NAME (one of the two); --respond hands
    each one to the agent."""
    if (file is None) == (firewall is None):
        err.print("[red]error:[/] give exactly one of --file eve.json or --firewall NAME")
        raise typer.Exit(2)
    if file is not None and not file.exists():
        err.print(f"[red]error:[/] {file} does not exist (OPNsense writes /var/log/suricata/eve.json)")
        raise typer.Exit(2)
    alerts = (
        tail_eve(file, from_start=from_start, follow=follow)
        if file
        else _fw_alerts(firewall, follow, interval, skip_first=respond and not from_start)
    )
    code = 0
    with contextlib.suppress(KeyboardInterrupt):
        if respond:
            from fazai.cli.alert_respond import AlertFilter
            from fazai.cli.alert_respond import respond as run_responses
            from fazai.cli.main import settings_or_exit

            flt = AlertFilter(max_severity=severity, cooldown_s=cooldown)
            code = asyncio.run(
                run_responses(
                    alerts,
                    settings_or_exit(),
                    yes=yes,
                    json_mode=as_json,
                    firewall=on or firewall,
                    flt=flt,
                    max_sessions=max_sessions,
                )
            )
        else:
            asyncio.run(_print_all(alerts, as_json))
    raise typer.Exit(code)


async def _print_all(alerts: AsyncIterator[SuricataAlert], as_json: bool) -> None:
    async for a in alerts:
        _emit(a, as_json)


async def _fw_alerts(
    name: str | None, follow: bool, interval: float, *, skip_first: bool = False
) -> AsyncIterator[SuricataAlert]:
    """Alerts from a firewall's queryAlerts, oldest first, each once (``skip_first``: only new ones)."""
    from fazai.cli.main import settings_or_exit
    from fazai.opnsense.errors import OPNsenseError
    from fazai.opnsense.store import FirewallStore, StoreError, open_firewall

    try:
        from fazai.vault import resolver

        settings = settings_or_exit()
        fw = await open_firewall(
            FirewallStore(settings.paths.state_dir, resolver(settings)),
            name,
            never_block=tuple(settings.opnsense.never_block),
        )
    except (OPNsenseError, StoreError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    seen: set[tuple[str | None, int | None]] = set()
    first = True
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
                    if not (first and skip_first):
                        yield a
            first = False
            if not follow:
                return
            await asyncio.sleep(interval)
    finally:
        await fw.client.aclose()
