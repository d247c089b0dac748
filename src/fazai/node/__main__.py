"""``fazai-agent``: enroll this node, then run the agent (systemd: deploy/systemd/fazai-agent.service).

    fazai-agent enroll --server wss://fazai.example:3122 --token fzt1.… [--name web-01]
    fazai-agent run [--server wss://replica-a:3121 --server wss://replica-b:3121]
    fazai-agent status

Exit codes: 0 stopped, 2 bad usage or not enrolled, 3 refused by the server (revoked: do not restart).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import signal
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from fazai.node.identity import Identity, IdentityError, enroll
from fazai.node.settings import AgentSettings, default_state_dir

REFUSED = 3


def _enroll(args: argparse.Namespace, state: Path) -> int:
    name = args.name or socket.gethostname().split(".")[0]
    ident = Identity(state)
    try:
        res = asyncio.run(
            enroll(
                ident,
                args.server,
                args.token,
                name,
                hostname=socket.gethostname(),
                wait_s=args.wait,
                poll_s=args.poll,
            )
        )
    except IdentityError as e:
        print(f"fazai-agent: {e}", file=sys.stderr)
        return 2
    u = urlsplit(args.server)
    settings = AgentSettings.load(state)
    settings.node = res.node
    settings.gateway = args.gateway or f"wss://{u.hostname}:{res.gateway_port}"
    settings.server_name = u.hostname
    settings.save(state)
    print(
        f"enrolled as {res.node}; certificate valid until {ident.cert().not_valid_after_utc:%Y-%m-%d}; "
        f"gateway {settings.gateway}"
    )
    return 0


def _run(args: argparse.Namespace, state: Path) -> int:
    from fazai.node.conn import Agent, Refused

    settings = AgentSettings.load(state)
    ident = Identity(state)
    if args.server:
        settings.servers = list(args.server)
    if not ident.enrolled or not settings.node or not settings.gateways():
        print(
            f"fazai-agent: not enrolled (no certificate in {state}): run `fazai-agent enroll --server "
            "wss://HOST:3122 --token TOKEN` first",
            file=sys.stderr,
        )
        return 2
    if args.backoff_max is not None:
        settings.backoff_max_s = args.backoff_max
    if args.backoff_base is not None:
        settings.backoff_base_s = args.backoff_base
    if args.telemetry is not None:
        settings.telemetry_s = args.telemetry
    if args.watch_unit:
        try:
            settings = AgentSettings.model_validate(
                {**settings.model_dump(), "watch_units": [*settings.watch_units, *args.watch_unit]}
            )
        except ValueError as e:
            print(f"fazai-agent: --watch-unit: {e}", file=sys.stderr)
            return 2

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        agent = Agent(state, settings)
        try:
            await agent.run_forever(stop)
        except Refused as e:
            logging.getLogger("fazai.agent").error("%s", e)
            return REFUSED
        finally:
            agent.journal.close()
        return 0

    return asyncio.run(main())


def _status(state: Path) -> int:
    from fazai.node.journal import Journal

    settings = AgentSettings.load(state)
    ident = Identity(state)
    out: dict[str, object] = {
        "state_dir": str(state),
        "node": settings.node,
        "gateway": settings.gateway,
        "servers": settings.gateways(),
        "enrolled": ident.enrolled,
    }
    if ident.enrolled:
        c = ident.cert()
        out["cert_not_after"] = c.not_valid_after_utc.isoformat()
        out["cert_days_left"] = round(
            (c.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds() / 86400, 1
        )
        j = Journal(state / "journal.db")
        out["outbox"] = j.pending()
        j.close()
    print(json.dumps(out, indent=2))
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``fazai-agent`` console script."""
    ap = argparse.ArgumentParser(prog="fazai-agent", description="FazAI node agent (dials out to fazaid)")
    ap.add_argument("--state-dir", type=Path, help="default /var/lib/fazai-agent (root) or XDG data dir")
    ap.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("enroll", help="get a certificate with a bootstrap token")
    e.add_argument("--server", required=True, help="wss://HOST:PORT of fazaid's enrollment listener")
    e.add_argument("--token", required=True, help="from `fazai nodes token --site SITE`")
    e.add_argument("--name", help="node name (default: the short hostname)")
    e.add_argument("--gateway", help="wss://HOST:PORT of the gateway (default: the server's answer)")
    e.add_argument("--wait", type=float, default=3600, help="seconds to wait for operator approval")
    e.add_argument("--poll", type=float, default=5, help="seconds between approval polls")
    r = sub.add_parser("run", help="connect and serve (what systemd runs)")
    r.add_argument(
        "--server",
        action="append",
        metavar="URL",
        help="wss://HOST:PORT of a replica's gateway; repeat or comma-separate for several (failover "
        "in this order; default: agent.json servers, else its gateway)",
    )
    r.add_argument("--backoff-max", type=float, help="longest reconnect delay in seconds (default 60)")
    r.add_argument("--backoff-base", type=float, help="first reconnect delay bound in seconds (default 0.5)")
    r.add_argument(
        "--telemetry", type=float, metavar="S", help="seconds between telemetry samples (default 60; 0: none)"
    )
    r.add_argument(
        "--watch-unit",
        action="append",
        metavar="UNIT",
        help="a systemd unit whose state and restarts go with the telemetry (repeat; adds to agent.json "
        "watch_units)",
    )
    sub.add_parser("status", help="enrollment, certificate expiry, outbox size")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    state = args.state_dir or default_state_dir()
    if args.cmd == "enroll":
        sys.exit(_enroll(args, state))
    if args.cmd == "run":
        sys.exit(_run(args, state))
    sys.exit(_status(state))


if __name__ == "__main__":
    main()
