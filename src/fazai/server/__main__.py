"""``fazaid``: the FazAI daemon (HTTP API + SSE on 127.0.0.1:3120 by default)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import socket
import sys

import structlog
import uvicorn

from fazai.config import ConfigError, Settings, load_settings
from fazai.server.auth import AuthConfigError, check_bind
from fazai.sessions import logs

log = structlog.get_logger("fazai.daemon")


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves, so a busy port gets a clear message (and port 0 works)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise SystemExit(
                f"fazaid: {host}:{port} is already in use — another fazaid is running "
                f"(check `curl -s http://{host}:{port}/healthz`) or set [daemon] port / --port"
            ) from e
        raise SystemExit(f"fazaid: cannot listen on {host}:{port}: {e.strerror}") from e
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def preflight(settings: Settings) -> None:
    """Check what the daemon needs before it listens, so a problem is one clear line, not a traceback.

    The state folder and files must be private (fixed when loose, refused when another user owns
    them); the token file must be writable; the store must open (SQLite: migrate; PostgreSQL: a
    schema this replica can use — an unreachable database is waited for later, with backoff).
    """
    from fazai.sessions.state import FileModeError, secure_state
    from fazai.sessions.token import ensure_token
    from fazai.store import SchemaError, Store, StoreError
    from fazai.store.retry import is_transient
    from fazai.store.store import is_disk_full

    try:
        secure_state(settings)
        if settings.daemon.require_token:
            ensure_token(settings.daemon_token_file)
    except FileModeError as e:
        raise SystemExit(f"fazaid: {e}") from e
    except OSError as e:
        hint = " — the disk is full: free space and start again" if is_disk_full(e) else ""
        raise SystemExit(
            f"fazaid: cannot prepare {e.filename or settings.paths.state_dir}: {e.strerror}{hint}"
        ) from e

    async def check_store() -> None:
        migrate = None if settings.daemon.migrate is None else settings.daemon.migrate == "auto"
        store = await Store.open(settings.database_url, migrate=migrate)
        await store.close()

    try:
        asyncio.run(check_store())
    except SchemaError as e:
        raise SystemExit(f"fazaid: {e}") from e
    except StoreError as e:
        if not is_transient(e):
            raise SystemExit(f"fazaid: {e}") from e
        log.warning("store_unreachable_at_start", error=str(e), message="waiting for it, with backoff")


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the daemon in the foreground until SIGTERM / Ctrl-C."""
    from fazai.server.app import create_app

    host = host or settings.daemon.host
    port = settings.daemon.port if port is None else port
    try:
        logs.configure(settings.daemon.log_level, settings.daemon.log_file)
    except OSError as e:
        raise SystemExit(f"fazaid: cannot open the log file {settings.daemon.log_file}: {e.strerror}") from e
    try:
        check_bind(host, settings.daemon.require_token)
    except AuthConfigError as e:
        raise SystemExit(f"fazaid: {e}") from e
    preflight(settings)
    sock = bind_socket(host, port)
    actual = sock.getsockname()[1]
    app = create_app(settings)
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    log.info("listening", url=f"http://{host}:{actual}", host=host, port=actual)
    asyncio.run(server.serve(sockets=[sock]))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``fazaid`` console script."""
    ap = argparse.ArgumentParser(prog="fazaid", description="FazAI daemon: HTTP API and SSE event streams")
    ap.add_argument("--host", help="listen address (default [daemon] host, 127.0.0.1)")
    ap.add_argument("--port", type=int, help="listen port (default [daemon] port, 3120; 0 = any free port)")
    ap.add_argument("--config", help="settings file (default $FAZAI_CONFIG or the standard path)")
    ap.add_argument(
        "--store", help="session store URL, postgresql://… or sqlite:///… ([daemon] database_url)"
    )
    ap.add_argument("--bus", help="NATS URL(s) between replicas, nats://host:4222 ([bus] url)")
    ap.add_argument("--replica", help="this replica's name ([daemon] replica_id; default the hostname)")
    args = ap.parse_args(argv)
    try:
        settings = load_settings(args.config)
        if args.store:
            settings.daemon.database_url = args.store
        if args.bus:
            settings.bus.url = args.bus
        if args.replica:
            settings.daemon.replica_id = args.replica
    except (ConfigError, ValueError) as e:
        print(f"fazaid: {e}", file=sys.stderr)
        sys.exit(2)
    serve(settings, args.host, args.port)


if __name__ == "__main__":
    main()
