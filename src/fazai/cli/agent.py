"""``fazai agent``, ``fazai sessions``, ``fazai replay`` and ``fazai daemon``.

``fazai agent`` talks to the daemon when one answers and otherwise runs the same runner embedded,
so a fresh install works with no manual start. The renderer reads only events.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from fazai.cli.client_types import ClientError, End, Lagged

if TYPE_CHECKING:
    from fazai.cli.client import AgentClient
    from fazai.cli.render import Renderer
    from fazai.protocol import Event
    from fazai.sessions.manager import RunOptions

# The store, the server and the agent are imported inside the commands: registering this group must
# not slow down every other `fazai` command.

err = Console(stderr=True)

# Exit codes: 0 success, 1 the goal failed / blocked, 2 usage or config, 3 backend error, 130 aborted.
EXIT_FOR = {
    "success": 0, "done": 0, "failed": 1, "blocked": 1, "unverified": 1, "aborted": 130, "interrupted": 130,
}  # fmt: skip


def _settings() -> Any:
    from fazai.cli.main import settings_or_exit

    return settings_or_exit()


async def _prompt(question: str) -> str | None:
    """Read a line without blocking the event loop; a daemon thread so an abort never waits for it."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[str | None] = loop.create_future()

    def read() -> None:
        try:
            line: str | None = input(question)
        except (EOFError, OSError):
            line = None
        loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(line))

    threading.Thread(target=read, daemon=True).start()
    return await fut


class _Session:
    """One `fazai agent` invocation: streams, prompts, handles Ctrl-C."""

    def __init__(self, client: AgentClient, renderer: Renderer, *, interactive: bool, json_mode: bool):
        self.client = client
        self.r = renderer
        self.interactive = interactive
        self.json_mode = json_mode
        self.session: str | None = None
        self.interrupts = 0
        self.main_task: asyncio.Task[Any] | None = None
        self.prompts: set[asyncio.Task[Any]] = set()
        self.yes = False
        self.lost = False  # the connection to the daemon broke at least once
        self._last = 0  # seq of the last event drawn
        self._status: str | None = None

    def on_sigint(self) -> None:
        self.interrupts += 1
        if self.interrupts == 1 and self.session:
            err.print(
                f"\n[yellow]aborting the current step…[/] (Ctrl-C again to exit; "
                f"`fazai agent --resume {self.session}` continues later)"
            )
            asyncio.get_running_loop().create_task(self._abort())
        elif self.main_task:
            self.main_task.cancel()

    async def _abort(self) -> None:
        try:
            if self.session:
                await self.client.abort(self.session)
        except ClientError as e:
            err.print(f"[red]abort failed:[/] {e}")

    async def _answer(self, ev: Event) -> None:
        d = ev.data
        action = d.get("action")
        try:
            if ev.kind == "approval_required":
                if not self.interactive:
                    err.print(
                        "[yellow]cannot ask for approval (stdin is not a terminal): denied; use --yes[/]"
                    )
                    await self.client.reply(ev.session, action, approved=False)
                    return
                line = await _prompt("  approve? [y/N] ")
                ok = (line or "").strip().lower() in ("y", "yes", "s", "sim")
                await self.client.reply(ev.session, action, approved=ok)
            else:
                default = d.get("default")
                if not self.interactive:
                    await self.client.reply(ev.session, action, answer=default)
                    return
                hint = f" [{default}]" if default else ""
                line = await _prompt(f"  answer{hint}: ")
                answer = (line or "").strip() or default
                await self.client.reply(ev.session, action, answer=answer)
        except ClientError as e:
            # The run may have been aborted meanwhile; say so, keep streaming.
            err.print(f"[yellow]reply not delivered:[/] {e}")

    async def run(self, stream: Any) -> str | None:
        """:meth:`consume` with Ctrl-C handled (abort the step, then exit): ``"interrupted"`` on exit.

        A :class:`ClientError` propagates to the caller.
        """
        loop = asyncio.get_running_loop()
        self.main_task = asyncio.current_task()
        installed = False
        try:
            loop.add_signal_handler(signal.SIGINT, self.on_sigint)
            installed = True
        except (NotImplementedError, RuntimeError):
            pass
        try:
            return await self.consume(stream)
        except asyncio.CancelledError:
            return "interrupted"
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
            for t in list(self.prompts):
                t.cancel()

    async def consume(self, stream: Any) -> str | None:
        last = 0
        while True:
            # aclosing: each stream is closed here, not later by the garbage collector.
            async with contextlib.aclosing(stream) as items:
                lagged = await self._consume_one(items)
            if lagged is None:
                return self._status
            # Fell behind or the connection dropped: replay from the last event we drew.
            if not self.session:
                return "failed"
            last = self._last or lagged.last_seq
            stream = self.client.events(self.session, after=last)

    async def _consume_one(self, items: Any) -> Lagged | None:
        """Render one stream; the :class:`Lagged` marker that ended it, or None at its end."""
        from fazai.protocol import Event

        self._status = None
        async for item in items:
            if isinstance(item, Event):
                self.session = item.session
                self._last = item.seq
                self.r.handle(item)
                if item.kind in ("approval_required", "ask") and not self.yes:
                    t = asyncio.create_task(self._answer(item))
                    self.prompts.add(t)
                    t.add_done_callback(self.prompts.discard)
            elif isinstance(item, End):
                self._status = item.status
                return None
            elif isinstance(item, Lagged):
                self.session = self.session or item.session
                self.lost = self.lost or item.lost
                return item
        return None


async def _run_agent(
    goal: str | None,
    *,
    session: str | None,
    options: RunOptions,
    json_mode: bool,
    embedded: bool | None,
) -> int:
    from fazai.cli.client import connect
    from fazai.cli.render import Renderer
    from fazai.sessions import logs

    settings = _settings()
    # Embedded runs log only problems, on stderr: stdout belongs to the renderer (and --json).
    logs.configure("warning")
    try:
        client = await connect(settings, embedded=embedded)
    except ClientError as e:
        err.print(f"[red]error:[/] {e}")
        return 3
    renderer = Renderer(json_mode=json_mode)
    s = _Session(client, renderer, interactive=sys.stdin.isatty() and not options.yes, json_mode=json_mode)
    s.session = session
    s.yes = options.yes
    status: str | None = None
    try:
        status = await s.run(client.generate(goal, session, options))
    except ClientError as e:
        err.print(f"[red]error:[/] {e}")
        return 3
    finally:
        if status == "interrupted" and s.session:
            err.print(f"[yellow]left running/resumable:[/] fazai agent --resume {s.session}")
        summary = renderer.finish(status)
        await client.aclose()
    final = summary.get("status") or status or "failed"
    if s.lost and final in ("interrupted", "failed") and status in (None, "interrupted"):
        # The daemon went away mid-run (docs/cli.md: exit 3); the session can be resumed.
        err.print(
            "[red]error:[/] the daemon went away during the run"
            + (f"; resume with `fazai agent --resume {s.session}`" if s.session else "")
        )
        return 3
    return EXIT_FOR.get(str(final), 1)


def agent_cmd(
    goal: str = typer.Argument(None, help="what FazAI should do (omit with --resume)"),
    json_mode: bool = typer.Option(False, "--json", help="ND-JSON events on stdout, the summary last"),
    yes: bool = typer.Option(False, "--yes", "-y", help="approve within policy without asking"),
    model: str = typer.Option(None, "--model", help="model for this run (default [ai_provider] model)"),
    max_iterations: int = typer.Option(None, "--max-iterations", min=1, help="iteration limit for this run"),
    session: str = typer.Option(None, "--session", help="continue this session with a new goal"),
    resume: str = typer.Option(None, "--resume", help="resume an interrupted session's goal"),
    embedded: bool = typer.Option(
        None, "--embedded/--daemon", help="force the in-process runner / require the daemon (default: auto)"
    ),
    node: str = typer.Option(None, "--node", help="run on this inventory node (fazai nodes list)"),
    nodes: str = typer.Option(
        None, "--nodes", help="run on every node this selector picks, e.g. 'site=sp,tag=web' (a session each)"
    ),
    concurrency: int = typer.Option(None, "--concurrency", min=1, help="with --nodes: nodes at once"),
) -> None:
    """Run a goal with the agent, streaming every token, command and result live.

    With ``--nodes`` the goal runs on each selected node as its own session (bounded concurrency) and
    a row per node is printed at the end; nobody is asked per node, so approvals are given by
    ``--yes`` (within policy) or denied.
    """
    if session and resume:
        err.print("[red]error:[/] give --session (new goal) or --resume (same goal), not both")
        raise typer.Exit(2)
    if resume and goal:
        err.print(
            "[red]error:[/] --resume continues the session's own goal; use --session ID to give a new one"
        )
        raise typer.Exit(2)
    if not goal and not resume:
        err.print('[red]error:[/] say what to do: fazai agent "how much disk is free?"')
        raise typer.Exit(2)
    if nodes and (node or session or resume):
        err.print(
            "[red]error:[/] --nodes SELECTOR starts a new session on each node: "
            "not with --node, --session or --resume"
        )
        raise typer.Exit(2)
    if concurrency and not nodes:
        err.print("[red]error:[/] --concurrency goes with --nodes SELECTOR")
        raise typer.Exit(2)
    if nodes:
        from fazai.cli.fanout import run_fanout

        code = asyncio.run(
            run_fanout(
                goal, nodes, mode="agent", model=model, json_mode=json_mode, embedded=embedded,
                concurrency=concurrency, yes=yes, max_iterations=max_iterations,
            )
        )  # fmt: skip
        raise typer.Exit(code)
    from fazai.sessions.manager import RunOptions

    options = RunOptions(yes=yes, max_iterations=max_iterations, model=model, node=node)
    code = asyncio.run(
        _run_agent(goal, session=session or resume, options=options, json_mode=json_mode, embedded=embedded)
    )
    raise typer.Exit(code)


def sessions_cmd(
    limit: int = typer.Option(30, "--limit", "-n", min=1, help="how many, most recent first"),
    json_mode: bool = typer.Option(False, "--json", help="JSON list"),
) -> None:
    """List agent sessions, most recent first."""

    from fazai.cli.client import connect, detect_daemon

    settings = _settings()

    async def go() -> list[dict[str, Any]]:
        if not await detect_daemon(settings):
            from fazai.cli.quick_sessions import list_sessions

            # No daemon: read the SQLite store directly (no SQLAlchemy/Alembic to import).
            quick = list_sessions(settings.database_url, limit)
            if quick is not None:
                return quick
        client = await connect(settings, runner=False)
        try:
            return await client.sessions(limit)
        finally:
            await client.aclose()

    try:
        rows = asyncio.run(go())
    except ClientError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(3) from e
    from fazai.cli.fast import print_sessions

    # The same table as the fast path's (fazai.cli.fast): ids whole, goal and summary give way.
    print_sessions(rows, json_mode)


def replay_cmd(
    session: str = typer.Argument(..., help="session id (see `fazai sessions`)"),
    json_mode: bool = typer.Option(False, "--json", help="the stored events as ND-JSON"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep following while the session runs"),
) -> None:
    """Re-render a session from its event log."""

    from fazai.cli.client import connect
    from fazai.cli.render import Renderer
    from fazai.protocol import Event

    async def go() -> int:
        client = await connect(_settings(), runner=False)
        r = Renderer(json_mode=json_mode)
        status = None
        try:
            async for item in client.events(session, after=0, follow=follow):
                if isinstance(item, Event):
                    r.handle(item)
                elif isinstance(item, End):
                    status = item.status
                    break
                elif isinstance(item, Lagged):
                    break
        finally:
            await client.aclose()
        r.finish(status)
        return 0

    try:
        raise typer.Exit(asyncio.run(go()))
    except ClientError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(3) from e


def daemon_cmd(
    host: str = typer.Option(None, "--host", help="listen address (default [daemon] host)"),
    port: int = typer.Option(None, "--port", help="listen port (default [daemon] port; 0 = any)"),
    store: str = typer.Option(
        None, "--store", help="session store URL: postgresql://… to share it between replicas"
    ),
    bus: str = typer.Option(None, "--bus", help="NATS JetStream between replicas: nats://host:4222"),
    replica: str = typer.Option(None, "--replica", help="this replica's name (default the hostname)"),
) -> None:
    """Run the FazAI daemon (fazaid) in the foreground (one of several replicas with --store/--bus)."""
    import os

    _settings()  # a bad config fails here, with the CLI's message
    argv = [sys.executable, "-m", "fazai.server"]
    argv += ["--host", host] if host else []
    argv += ["--port", str(port)] if port is not None else []
    for flag, val in (("--store", store), ("--bus", bus), ("--replica", replica)):
        argv += [flag, val] if val else []
    # Replace this process (the CLI does not import the server): signals and exit code are fazaid's.
    os.execv(sys.executable, argv)


def register(app: typer.Typer) -> None:
    """Attach agent, sessions, replay and daemon to the root app."""
    app.command("agent")(agent_cmd)
    app.command("sessions")(sessions_cmd)
    app.command("replay")(replay_cmd)
    app.command("daemon")(daemon_cmd)
