"""``fazai secrets``: the encrypted vault. Values are read from stdin or a hidden prompt, never shown."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fazai.cli.store_access import cli_actor, read_secret, with_store

secrets_app = typer.Typer(
    help="Secrets encrypted at rest (provider keys, OPNsense key/secret…).", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

StdinOpt = Annotated[bool, typer.Option("--stdin", help="read the value from standard input")]


async def _vault(settings, store, *, create: bool = False):  # type: ignore[no-untyped-def]
    from fazai.vault import Vault, recover_rotation

    await recover_rotation(store.engine, settings.paths.state_dir)
    return await Vault.open(store.engine, settings.paths.state_dir, create=create)


async def _audit(settings, store, action: str, target: str, **detail) -> None:  # type: ignore[no-untyped-def]
    from fazai.audit import AuditLog

    await AuditLog(store.engine, settings.paths.state_dir).append(cli_actor(), action, target, detail=detail)


def _run(fn):  # type: ignore[no-untyped-def]
    from fazai.vault import VaultError

    return with_store(fn, VaultError, OSError)


@secrets_app.command("set")
def set_secret(name: str, stdin: StdinOpt = False) -> None:
    """Store NAME (its value from standard input or a hidden prompt; never as an argument)."""
    from fazai.vault import VaultError
    from fazai.vault.vault import check_name

    try:
        check_name(name)
    except VaultError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e
    value = read_secret(f"Value of {name}", stdin=stdin)

    async def go(settings, store):  # type: ignore[no-untyped-def]
        v = await _vault(settings, store, create=True)
        info = await v.set(name, value)
        await _audit(settings, store, "secret.set", name, version=info.version)
        return info

    info = _run(go)
    out.print(f"secret {name} stored (version {info.version}); use it as vault:{name}")


@secrets_app.command("rotate")
def rotate_secret(name: str, stdin: StdinOpt = False) -> None:
    """Replace the value of an existing secret NAME (a new version)."""

    async def go(settings, store):  # type: ignore[no-untyped-def]
        v = await _vault(settings, store)
        if not await v.exists(name):
            from fazai.vault import VaultError

            raise VaultError(f"no secret {name} to rotate (create it with `fazai secrets set {name}`)")
        return v

    _run(go)
    value = read_secret(f"New value of {name}", stdin=stdin)

    async def go2(settings, store):  # type: ignore[no-untyped-def]
        info = await (await _vault(settings, store)).set(name, value)
        await _audit(settings, store, "secret.rotate", name, version=info.version)
        return info

    info = _run(go2)
    out.print(f"secret {name} rotated (version {info.version})")


@secrets_app.command("rotate-key")
def rotate_key() -> None:
    """A new master key: every secret is re-encrypted under it in one transaction."""

    async def go(settings, store):  # type: ignore[no-untyped-def]
        v = await _vault(settings, store, create=True)
        new, n = await v.rotate_master(settings.paths.state_dir)
        await _audit(settings, store, "secret.rotate_key", new.key_id, secrets=n)
        return new, n

    new, n = _run(go)
    out.print(f"master key rotated (new key id {new.key_id}); {n} secrets re-encrypted")


@secrets_app.command("list")
def list_secrets(json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Secret names and versions (never values)."""

    async def go(settings, store):  # type: ignore[no-untyped-def]
        return await (await _vault(settings, store)).list()

    rows = _run(go)
    if json_out:
        print(json.dumps([{"name": r.name, "version": r.version, "updated_at": r.updated_at} for r in rows]))
        return
    t = Table("name", "version", "updated")
    for r in rows:
        t.add_row(r.name, str(r.version), r.updated_at[:19])
    out.print(t if rows else "the vault is empty")


@secrets_app.command("rm")
def remove(name: str) -> None:
    """Delete a secret."""

    async def go(settings, store) -> bool:  # type: ignore[no-untyped-def]
        done = await (await _vault(settings, store)).remove(name)
        if done:
            await _audit(settings, store, "secret.rm", name)
        return done

    if not _run(go):
        err.print(f"[red]error:[/] no secret {name} (see `fazai secrets list`)")
        raise typer.Exit(1)
    out.print(f"secret {name} removed")


def register(app: typer.Typer) -> None:
    """Attach ``fazai secrets``."""
    app.add_typer(secrets_app, name="secrets")
