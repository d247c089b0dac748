"""``fazai tools``: list, show, promote and remove tools made on demand."""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from fazai.tools.builtin import make_registry
from fazai.tools.registry import ToolInfo, ToolNotFound, ToolRegistry
from fazai.tools.smith import validate_tool

out = Console()
err = Console(stderr=True)

tools_app = typer.Typer(
    name="tools",
    help="Tools made on demand: list, show, promote (generated → stable) and remove.",
    no_args_is_help=True,
)


def _registry() -> ToolRegistry:
    from fazai.cli.main import settings_or_exit

    return make_registry(settings_or_exit())


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


@tools_app.command("list")
def list_tools(
    session: str | None = typer.Option(None, "--session", "-s", help="only this session's generated tools"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """List built-in, stable and generated tools with their risk class."""
    reg = _registry()
    tools = [*reg.builtins(), *reg.stable(), *reg.generated(session)] if session else reg.all()
    if as_json:
        print(json.dumps([t.summary() for t in tools], indent=2))
        return
    if not tools:
        out.print(f"no tools yet (generated tools appear under {reg.tools_dir}/_generated after a tool_spec)")
        return
    table = Table("name", "kind", "risk", "session", "description")
    for t in tools:
        table.add_row(t.name, t.kind, t.risk, t.session or "", t.spec.description)
    out.print(table)


def _find(reg: ToolRegistry, name: str, session: str | None) -> ToolInfo:
    for t in reg.all():
        if t.name == name and (session is None or t.session == session):
            return t
    raise _fail(
        f"no tool named {name!r}" + (f" in session {session}" if session else "") + " (see: fazai tools list)"
    )


@tools_app.command("show")
def show_tool(
    name: str = typer.Argument(..., help="tool name"),
    session: str | None = typer.Option(None, "--session", "-s", help="the generated tool of this session"),
    as_json: bool = typer.Option(False, "--json", help="print JSON (spec, validation record, source)"),
) -> None:
    """Show a tool's spec, validation record and code."""
    reg = _registry()
    info = _find(reg, name, session)
    if as_json:
        print(
            json.dumps({**info.summary(), "validation": info.validation, "source": info.source()}, indent=2)
        )
        return
    out.print(f"[bold]{info.name}[/] ({info.kind}, risk [bold]{info.risk}[/])")
    out.print(info.spec.description)
    out.print("inputs: " + json.dumps(info.spec.inputs))
    if info.path:
        out.print(f"file: {info.path}")
    if info.validation:
        v = info.validation
        out.print(
            f"validated: {v.get('tests_passed', 0)} test(s) passed, isolation {v.get('isolation', '?')}"
            + (f", {v['risk_raised']}" if v.get("risk_raised") else "")
        )
    if info.path:
        out.print(Syntax(info.source(), "python", line_numbers=True))


@tools_app.command("promote")
def promote_tool(
    name: str = typer.Argument(..., help="generated tool to promote"),
    session: str | None = typer.Option(None, "--session", "-s", help="session that generated it"),
    force: bool = typer.Option(False, "--force", help="replace an existing stable tool of that name"),
    no_test: bool = typer.Option(False, "--no-test", help="skip re-running its tests before promoting"),
) -> None:
    """Promote a generated tool to stable: it is then offered to every session."""
    from fazai.cli.main import settings_or_exit

    settings = settings_or_exit()
    reg = make_registry(settings)
    try:
        info = reg.find_generated(name, session)
    except ToolNotFound as e:
        raise _fail(str(e)) from e
    if not no_test:
        assert info.path is not None
        tests = (info.validation or {}).get("tests") or None
        result = asyncio.run(
            validate_tool(
                info.source(),
                str(info.path),
                expected_name=name,
                tests=tests,
                timeout_s=settings.tools.validate_timeout_s,
                sandbox_mode=settings.tools.sandbox,
            )
        )
        if not result.ok:
            raise _fail("its tests no longer pass, not promoted:\n  " + "\n  ".join(result.errors))
        out.print(f"tests passed ({result.tests_passed}, isolation {result.isolation})")
    try:
        dest = reg.promote(name, info.session, force=force)
    except FileExistsError as e:
        raise _fail(str(e)) from e
    out.print(f"promoted {name} → {dest} (risk {info.risk}); every session can now use it")


@tools_app.command("rm")
def remove_tool(
    name: str = typer.Argument(..., help="tool to remove"),
    generated: bool = typer.Option(
        False, "--generated", help="remove generated copies instead of the stable one"
    ),
    session: str | None = typer.Option(None, "--session", "-s", help="with --generated: only this session"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Remove a stable tool (or, with --generated, generated ones)."""
    reg = _registry()
    kind = "generated" if generated else "stable"
    if not yes and not typer.confirm(f"remove {kind} tool {name!r}?"):
        raise typer.Exit(1)
    try:
        removed = reg.remove(name, kind=kind, session=session)
    except (ToolNotFound, ValueError) as e:
        raise _fail(str(e)) from e
    for p in removed:
        out.print(f"removed {p}")


def register(app: typer.Typer) -> None:
    """Attach ``fazai tools`` to the root app."""
    app.add_typer(tools_app, name="tools")
