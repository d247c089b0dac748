"""``fazai opnsense carp | firmware … | backup history/revert | service …``: the firewall as a system.

The security-critical commands (a firmware update or upgrade, a config revert, restarting pf, the web
GUI, SSH, configd or routing) show their plan and ask the operator; there is no ``--yes`` for them and a
run without an answer (no terminal, end of input) changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from fazai.cli.opnsense import (
    DRY,
    FW,
    JSON,
    _print_result,
    _print_rows,
    _with_fw,
    app,
    backup_app,
    err,
    out,
)
from fazai.opnsense import firmware as fwm
from fazai.opnsense import reads, revert, services
from fazai.opnsense.diff import Result
from fazai.opnsense.firewall import Firewall

firmware_app = typer.Typer(help="Firmware status, update check, update and upgrade.", no_args_is_help=True)
service_app = typer.Typer(help="Services on the firewall.", no_args_is_help=True)
app.add_typer(firmware_app, name="firmware")
app.add_typer(service_app, name="service")


def _confirm(question: str, why: str) -> None:
    """An operator's explicit yes, or exit 1 with nothing changed (no --yes exists for this)."""
    err.print(f"[yellow]security-critical:[/] {why}", highlight=False)
    try:
        ok = typer.confirm(question, default=False, err=True)
    except typer.Abort:
        ok = False
    if not ok:
        err.print("[red]not confirmed:[/] nothing was changed")
        raise typer.Exit(1)


def _progress(line: str) -> None:
    out.print(f"[dim]│[/] {line}", highlight=False)


# ---------------------------------------------------------------------- CARP
@app.command("carp")
def carp(firewall: str | None = FW, as_json: bool = JSON) -> None:
    """CARP / virtual IP status: each VIP's state, demotion, maintenance mode."""
    data = _with_fw(firewall, reads.carp_status)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    out.print(data["summary"], highlight=False)
    if data["message"]:
        out.print(f"[cyan]note:[/] {data['message']}", highlight=False)
    _print_rows(data["vips"], ["interface", "vhid", "subnet", "mode", "status", "advbase", "advskew"], False)


# ---------------------------------------------------------------------- firmware
@firmware_app.command("status")
def firmware_status(firewall: str | None = FW, as_json: bool = JSON) -> None:
    """What the last update check found (starts no check)."""

    async def go(fw: Firewall) -> dict[str, Any]:
        return fwm.summary(await fwm.status(fw))

    _print_firmware(_with_fw(firewall, go), as_json)


def _print_firmware(st: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(st, indent=2))
        return
    out.print(f"OPNsense {st['version']}: {st['status']} — {st['message']}", highlight=False)
    if st["packages"]:
        _print_rows(st["packages"], ["name", "old", "new", "reason"], False)


@firmware_app.command("check")
def firmware_check(
    timeout: float = typer.Option(300.0, "--timeout", help="seconds to wait for the check"),
    firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON,
) -> None:  # fmt: skip
    """Check the mirror for updates (the firewall refreshes its package catalogue) and show them."""
    res = _with_fw(
        firewall,
        lambda fw: fwm.check(fw, dry_run=dry_run, timeout_s=timeout, progress=None if as_json else _progress),
    )
    if as_json or dry_run:
        _print_result(res, as_json)
        return
    _print_firmware(res.data["firmware"], False)


@firmware_app.command("progress")
def firmware_progress(firewall: str | None = FW, as_json: bool = JSON) -> None:
    """The running (or last) firmware job and its log's last lines."""
    data = _with_fw(firewall, fwm.progress_of)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    out.print(f"job: {data['status']} (firmware lock: {data['running']})", highlight=False)
    for line in data["log_tail"]:
        _progress(line)


def _update(kind: str, timeout: float, firewall: str | None, dry_run: bool, as_json: bool) -> None:
    plan = _with_fw(firewall, lambda fw: fwm.update(fw, kind, dry_run=True))
    if dry_run or not as_json:
        _print_result(plan, as_json)
    if dry_run:
        return
    reboot = plan.data["reboot_expected"]
    _confirm(
        f"run the firmware {kind} now?",
        f"the firmware {kind} replaces packages" + (" and REBOOTS the firewall" if reboot else ""),
    )
    res = _with_fw(
        firewall,
        lambda fw: fwm.update(fw, kind, timeout_s=timeout, progress=None if as_json else _progress),
    )
    _print_result(res, as_json)


@firmware_app.command("update")
def firmware_update(
    timeout: float = typer.Option(1800.0, "--timeout", help="seconds to follow the update (and reboot)"),
    firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON,
) -> None:  # fmt: skip
    """Install the pending update found by `firmware check` (asks first; may reboot)."""
    _update("update", timeout, firewall, dry_run, as_json)


@firmware_app.command("upgrade")
def firmware_upgrade(
    timeout: float = typer.Option(3600.0, "--timeout", help="seconds to follow the upgrade (and reboots)"),
    firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON,
) -> None:  # fmt: skip
    """Run the pending major upgrade found by `firmware check` (asks first; reboots)."""
    _update("upgrade", timeout, firewall, dry_run, as_json)


# ---------------------------------------------------------------------- configuration history
@backup_app.command("history")
def backup_history(
    limit: int = typer.Option(20, "--limit", "-l"), firewall: str | None = FW, as_json: bool = JSON
) -> None:
    """The firewall's own configuration history, newest first (ids for `backup revert`)."""
    rows = _with_fw(firewall, revert.history)[:limit]
    _print_rows(rows, ["id", "time", "description", "username"], as_json)


@backup_app.command("revert")
def backup_revert(
    ident: str = typer.Argument(..., help="a firewall revision (config-<time>.xml) or a kept backup id"),
    firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON,
) -> None:  # fmt: skip
    """Revert config.xml to an earlier revision (asks first; takes a fresh backup first)."""
    plan = _with_fw(firewall, lambda fw: revert.revert(fw, ident, dry_run=True))
    if dry_run or not as_json or not plan.changed:
        _print_plan(plan, as_json)
    if dry_run or not plan.changed:
        return
    target = plan.changes[0].name
    _confirm(f"revert the configuration to {target}?", "replaces the firewall's whole configuration")
    res = _with_fw(firewall, lambda fw: revert.revert(fw, ident))
    _print_result(res, as_json)
    if not as_json:
        out.print(f"fresh backup before the revert: {res.data['backup_before']}", highlight=False)


def _print_plan(plan: Result, as_json: bool) -> None:
    _print_result(plan, as_json)
    if as_json:
        return
    for line in plan.data.get("diff") or []:
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
        out.print(f"[{style}]{line}[/]", highlight=False, markup=True)
    more = int(plan.data.get("diff_lines") or 0) - len(plan.data.get("diff") or [])
    if more > 0:
        out.print(f"[dim]… {more} more diff lines[/]")


# ---------------------------------------------------------------------- services
@service_app.command("list")
def service_list(firewall: str | None = FW, as_json: bool = JSON) -> None:
    """Services, running or not (ids for `service restart`)."""
    rows = _with_fw(firewall, services.list_services)
    _print_rows(rows, ["id", "description", "running", "locked"], as_json)


@service_app.command("restart")
def service_restart(
    service: str = typer.Argument(..., help="name or name/id from `service list`"),
    firewall: str | None = FW, dry_run: bool = DRY, as_json: bool = JSON,
) -> None:  # fmt: skip
    """Restart a service (pf, webgui, openssh, configd and routing ask first)."""
    plan = _with_fw(firewall, lambda fw: services.restart(fw, service, dry_run=True))
    if dry_run:
        _print_result(plan, as_json)
        return
    why = services.critical_reason({"service": service})
    if why:
        _confirm(f"restart {plan.changes[0].name}?", why)
    _print_result(_with_fw(firewall, lambda fw: services.restart(fw, service)), as_json)
