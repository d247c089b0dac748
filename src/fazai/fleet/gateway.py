"""The fleet listeners inside fazaid: the mTLS WebSocket gateway and the enrollment endpoint.

- **gateway** (``[fleet] gateway_port``): TLS with ``CERT_REQUIRED`` against the fleet CA. OpenSSL
  refuses a missing, expired or foreign certificate during the handshake; the handshake's reason is
  logged (:class:`_LoggedSSLObject`). Then the certificate's serial is checked against the store
  (revocations) before the WebSocket upgrade, and the :class:`~fazai.fleet.hub.Hub` serves it.
- **enrollment** (``[fleet] enroll_port``): TLS, server certificate only. ``GET /ca.crt`` gives the CA
  certificate (public; the agent checks it against the pin in its token), and a WebSocket on
  ``/enroll`` takes one ``enroll`` / ``enroll.poll`` frame and answers ``enroll.result``.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import ssl
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from fazai import wire
from fazai.config import Settings
from fazai.fleet.actions import ActionStore
from fazai.fleet.ca import CertificateAuthority
from fazai.fleet.hub import Hub
from fazai.fleet.registry import EnrollError, Registry
from fazai.fleet.relay import Bus, Relay, RouteStore

log = structlog.get_logger("fazai.fleet")


class _LoggedSSLObject(ssl.SSLObject):
    """Logs why a TLS handshake failed (no certificate, expired, unknown CA): asyncio drops it silently."""

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as e:
            log.warning(
                "tls_refused", reason=_tls_reason(e), listener=getattr(self.context, "_fazai_name", "")
            )
            raise


def _tls_reason(e: ssl.SSLError) -> str:
    text = getattr(e, "verify_message", None) or e.reason or str(e)
    mapping = {
        "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no client certificate (enroll the agent first)",
        "CERTIFICATE_VERIFY_FAILED": "client certificate not signed by this fleet's CA",
    }
    return mapping.get(str(text), str(text))


def server_context(cert: Path, key: Path, ca: Path | None, name: str) -> ssl.SSLContext:
    """TLS server context; with ``ca`` a client certificate signed by it is required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if ca is not None:
        ctx.load_verify_locations(cafile=str(ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.sslobject_class = _LoggedSSLObject
    ctx._fazai_name = name  # type: ignore[attr-defined]
    return ctx


def peer_identity(ws: ServerConnection) -> tuple[str, str]:
    """``(node name, certificate serial in lowercase hex)`` from the verified client certificate."""
    cert: dict[str, Any] = ws.transport.get_extra_info("peercert") or {}
    cn = ""
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                cn = v
    serial = format(int(cert.get("serialNumber", "0"), 16), "x")
    return cn, serial


@dataclass
class Fleet:
    """The running fleet listeners and their hub."""

    settings: Settings
    ca: CertificateAuthority
    registry: Registry
    hub: Hub
    gateway: Server | None = None
    enroller: Server | None = None
    watcher: asyncio.Task[None] | None = None
    writer: asyncio.Task[None] | None = None

    @property
    def gateway_port(self) -> int:
        assert self.gateway is not None
        return self.gateway.sockets[0].getsockname()[1]

    @property
    def enroll_port(self) -> int:
        assert self.enroller is not None
        return self.enroller.sockets[0].getsockname()[1]

    async def start(self) -> None:
        fs = self.settings.fleet
        # asyncio gives every TLS connection a 256 KiB read buffer (Python 3.11-3.13): 2.5 GiB for
        # 10,000 idle agents. A TLS record is at most 16 KiB, so 32 KiB loses nothing but memory
        # (measured by bench/bench_fleet.py: RSS per connection).
        asyncio.sslproto.SSLProtocol.max_size = min(asyncio.sslproto.SSLProtocol.max_size, 32 * 1024)
        cert, key = self.ca.ensure_server_cert([fs.host, *fs.server_names])
        gw_ctx = server_context(cert, key, self.ca.cert_path, "gateway")
        en_ctx = server_context(cert, key, None, "enroll")
        self.gateway = await serve(
            self._gateway_handler,
            fs.host,
            fs.gateway_port,
            ssl=gw_ctx,
            compression=None,
            max_size=fs.max_frame_bytes,
            max_queue=4,
            process_request=self._check_peer,
            ping_interval=max(fs.heartbeat_s * 2, 20),
            ping_timeout=max(fs.heartbeat_s * 2, 20),
            open_timeout=10,
            server_header=None,
            # A reconnect storm arrives at once: a short accept queue drops SYNs, and each drop costs
            # the client a 1 s (then 3 s, 7 s…) retransmit.
            backlog=4096,
        )
        self.enroller = await serve(
            self._enroll_handler,
            fs.host,
            fs.enroll_port,
            ssl=en_ctx,
            compression=None,
            max_size=64 * 1024,
            process_request=self._enroll_http,
            open_timeout=10,
            server_header=None,
        )
        self.watcher = asyncio.create_task(self.hub.watch_revocations())
        self.writer = asyncio.create_task(self.hub.result_writer())
        log.info(
            "fleet_listening",
            gateway=f"wss://{fs.host}:{self.gateway_port}",
            enroll=f"wss://{fs.host}:{self.enroll_port}/enroll",
            ca_pin=self.ca.pin,
        )

    async def stop(self) -> None:
        if self.hub.relay is not None:
            await self.hub.relay.stop()
        self.hub.stop_flush()
        for task in (self.watcher, self.writer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for srv in (self.gateway, self.enroller):
            if srv is not None:
                srv.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(srv.wait_closed(), 5)

    async def _check_peer(self, ws: ServerConnection, request: Request) -> Response | None:
        node, serial = peer_identity(ws)
        why = await self.hub.check_peer(serial, node)
        if why is not None:
            log.warning("agent_refused", node=node, serial=serial, reason=why, code="revoked")
            self.hub.counters["refused"] += 1
            return ws.respond(HTTPStatus.FORBIDDEN, why + "\n")
        return None

    async def _gateway_handler(self, ws: ServerConnection) -> None:
        node, serial = peer_identity(ws)
        await self.hub.handle(ws, node, serial)

    async def _enroll_http(self, ws: ServerConnection, request: Request) -> Response | None:
        if request.path == "/ca.crt":
            resp = ws.respond(HTTPStatus.OK, self.ca.cert_pem)
            resp.headers["Content-Type"] = "application/x-pem-file"
            return resp
        if request.path != "/enroll":
            return ws.respond(HTTPStatus.NOT_FOUND, "paths: /ca.crt, /enroll (WebSocket)\n")
        return None

    async def _enroll_handler(self, ws: ServerConnection) -> None:
        peer = ws.remote_address[0] if ws.remote_address else "?"
        try:
            raw = await asyncio.wait_for(ws.recv(), 10)
            env, spec = wire.parse(raw, max_bytes=64 * 1024)
            if env.kind == "enroll":
                out = await self.registry.enroll(
                    spec.token,
                    spec.csr,
                    hostname=spec.hostname,
                    facts=spec.facts,
                    require_approval=self.settings.fleet.require_approval,
                )
            elif env.kind == "enroll.poll":
                out = await self.registry.poll(spec.enrollment, spec.csr)
            else:
                raise wire.WireError(f"the enrollment endpoint takes enroll or enroll.poll, not {env.kind}")
        except (wire.WireError, EnrollError) as e:
            code = getattr(e, "code", "bad_frame")
            log.warning("enroll_refused", peer=peer, reason=str(e), code=code)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(wire.frame("error", {"code": code, "message": str(e)}))
            return
        except (TimeoutError, ConnectionClosed):
            return
        log.info("enroll", peer=peer, node=out.node, status=out.status, enrollment=out.enrollment)
        result = wire.EnrollResult(
            status=out.status,
            enrollment=out.enrollment,
            node=out.node,
            cert=out.cert,
            ca=self.ca.cert_pem,
            gateway_port=self.gateway_port,
            message=out.message,
        )
        with contextlib.suppress(ConnectionClosed):
            await ws.send(wire.frame("enroll.result", result, corr=env.id))


def ca_folder(settings: Settings) -> Path:
    """The fleet CA's folder: ``[fleet] ca_dir`` (replicas share one) or ``<state_dir>/fleet``."""
    return settings.fleet.ca_dir or settings.paths.state_dir / "fleet"


async def start_fleet(
    settings: Settings, engine: AsyncEngine, *, bus: Bus | None = None, replica: str = ""
) -> Fleet:
    """Open the CA (creating it on first use) and start both listeners and the revocation watch.

    With ``bus`` (replicas sharing PostgreSQL and NATS) actions for nodes held by another replica are
    relayed to it (:mod:`fazai.fleet.relay`)."""
    ca = CertificateAuthority.load_or_create(ca_folder(settings))
    registry = Registry(engine, ca, cert_days=settings.fleet.cert_days)
    hub = Hub(settings.fleet, registry, ActionStore(engine))
    if bus is not None:
        stale_s = 3 * settings.daemon.heartbeat_s + 1  # as the session sweep (sessions/replicas.py)
        hub.relay = Relay(
            hub, bus, replica, RouteStore(engine), stale_s=stale_s, wait_s=settings.fleet.relay_wait_s
        )
        await hub.relay.start()
    fleet = Fleet(settings, ca, registry, hub)
    await fleet.start()
    return fleet
