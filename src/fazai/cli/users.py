"""``fazai users`` and ``fazai tokens``: accounts, role grants per organisation/site, API tokens."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fazai.cli.store_access import cli_actor, read_secret, with_store

users_app = typer.Typer(help="Console and API users and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="Scoped API tokens for automation.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

StdinOpt = Annotated[bool, typer.Option("--password-stdin", help="read the password from standard input")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
ScopeArg = Annotated[str, typer.Argument(help="'*' (everything), ORG, or ORG/SITE")]


def _role_scope(role: str, scope: str):  # type: ignore[no-untyped-def]
    from fazai.auth import Role, Scope

    try:
        return Role.parse(role), Scope.parse(scope)
    except ValueError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e


def _audit(store, settings, action: str, target: str, **detail):  # type: ignore[no-untyped-def]
    from fazai.audit import AuditLog

    return AuditLog(store.engine, settings.paths.state_dir).append(cli_actor(), action, target, detail=detail)


def _service(settings, store):  # type: ignore[no-untyped-def]
    from fazai.auth import AuthService

    return AuthService(store.engine, settings.paths.state_dir)


@users_app.command("add")
def add(
    name: str,
    role: Annotated[str | None, typer.Option("--role", help="grant this role right away")] = None,
    scope: Annotated[str, typer.Option("--scope", help="… on this scope ('*', ORG, ORG/SITE)")] = "*",
    password_stdin: StdinOpt = False,
) -> None:
    """Create a user (the password is read from a hidden prompt or --password-stdin)."""
    from fazai.auth import AuthError

    grant = _role_scope(role, scope) if role else None
    password = read_secret("Password", stdin=password_stdin)

    async def go(settings, store) -> None:  # type: ignore[no-untyped-def]
        svc = _service(settings, store)
        await svc.users.add(name, password)
        await _audit(store, settings, "user.add", name)
        if grant:
            await svc.users.grant(name, *grant)
            await _audit(store, settings, "user.grant", name, role=grant[0].name, scope=str(grant[1]))

    with_store(go, AuthError)
    out.print(f"user {name} created" + (f", {grant[0].name} on {grant[1]}" if grant else " (no roles yet)"))


@users_app.command("passwd")
def passwd(name: str, password_stdin: StdinOpt = False) -> None:
    """Change a user's password (their sessions and refresh tokens stop working)."""
    from fazai.auth import AuthError

    password = read_secret("New password", stdin=password_stdin)

    async def go(settings, store) -> None:  # type: ignore[no-untyped-def]
        await _service(settings, store).users.set_password(name, password)
        await _audit(store, settings, "user.passwd", name)

    with_store(go, AuthError)
    out.print(f"password of {name} changed; their earlier sign-ins are revoked")


@users_app.command("grant")
def grant(name: str, role: str, scope: ScopeArg = "*") -> None:
    """Give NAME the ROLE (viewer, operator, approver, admin) on SCOPE."""
    from fazai.auth import AuthError

    r, s = _role_scope(role, scope)

    async def go(settings, store) -> None:  # type: ignore[no-untyped-def]
        await _service(settings, store).users.grant(name, r, s)
        await _audit(store, settings, "user.grant", name, role=r.name, scope=str(s))

    with_store(go, AuthError)
    out.print(f"{name} is {r.name} on {s}")


@users_app.command("revoke")
def revoke(name: str, scope: ScopeArg) -> None:
    """Remove NAME's role on SCOPE."""
    from fazai.auth import AuthError, Scope

    try:
        s = Scope.parse(scope)
    except ValueError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e

    async def go(settings, store) -> bool:  # type: ignore[no-untyped-def]
        done = await _service(settings, store).users.revoke(name, s)
        if done:
            await _audit(store, settings, "user.revoke", name, scope=str(s))
        return done

    if not with_store(go, AuthError):
        err.print(f"[red]error:[/] {name} has no role on {s} (see `fazai users list`)")
        raise typer.Exit(1)
    out.print(f"{name} has no role on {s} any more")


@users_app.command("list")
def list_users(json_out: JsonOpt = False) -> None:
    """Users and their grants."""

    async def go(settings, store):  # type: ignore[no-untyped-def]
        return await _service(settings, store).users.list()

    rows = with_store(go)
    if json_out:
        data = [
            {
                "name": u.name,
                "disabled": u.disabled,
                "created_at": u.created_at,
                "grants": [str(g) for g in u.grants],
            }
            for u in rows
        ]
        print(json.dumps(data, indent=2))
        return
    t = Table("user", "grants", "created")
    for u in rows:
        t.add_row(u.name, ", ".join(str(g) for g in u.grants) or "(none)", u.created_at[:19])
    out.print(t if rows else "no users yet: `fazai users add NAME --role admin`")


@tokens_app.command("create")
def create_token(
    user: str,
    name: Annotated[str, typer.Option("--name", help="what the token is for")] = "automation",
    role: Annotated[str, typer.Option("--role", help="its role (at most the user's)")] = "viewer",
    scope: Annotated[str, typer.Option("--scope", help="'*', ORG or ORG/SITE")] = "*",
    days: Annotated[int | None, typer.Option("--days", min=1, help="expires after this many days")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an API token for USER; it is printed once (store it in your secret manager)."""
    from fazai.auth import AuthError

    r, s = _role_scope(role, scope)

    async def go(settings, store):  # type: ignore[no-untyped-def]
        token, info = await _service(settings, store).create_api_token(user, name, r, s, days)
        await _audit(store, settings, "token.create", info.id, user=user, role=r.name, scope=str(s))
        return token, info

    token, info = with_store(go, AuthError)
    if json_out:
        print(json.dumps({"id": info.id, "token": token, "user": user, "role": r.name, "scope": str(s)}))
        return
    err.print(f"token {info.id} for {user}: {r.name} on {s} — shown once:")
    print(token)


@tokens_app.command("list")
def list_tokens(json_out: JsonOpt = False) -> None:
    """API tokens (never their secrets)."""

    async def go(settings, store):  # type: ignore[no-untyped-def]
        return await _service(settings, store).list_api_tokens()

    rows = with_store(go)
    if json_out:
        print(json.dumps([_info(r) for r in rows], indent=2))
        return
    t = Table("id", "user", "name", "role", "scope", "expires", "state")
    for r in rows:
        t.add_row(
            r.id,
            r.user,
            r.name,
            r.role,
            r.scope,
            r.expires_at or "never",
            "revoked" if r.revoked else "active",
        )
    out.print(t if rows else "no API tokens")


def _info(r) -> dict:  # type: ignore[no-untyped-def]
    return {k: getattr(r, k) for k in r.__slots__}


@tokens_app.command("revoke")
def revoke_token(token_id: str) -> None:
    """Revoke an API token by its id (see `fazai tokens list`)."""

    async def go(settings, store) -> bool:  # type: ignore[no-untyped-def]
        done = await _service(settings, store).revoke_api_token(token_id)
        if done:
            await _audit(store, settings, "token.revoke", token_id)
        return done

    if not with_store(go):
        err.print(f"[red]error:[/] no API token {token_id} (see `fazai tokens list`)")
        raise typer.Exit(1)
    out.print(f"token {token_id} revoked")


def register(app: typer.Typer) -> None:
    """Attach ``fazai users`` and ``fazai tokens``."""
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
