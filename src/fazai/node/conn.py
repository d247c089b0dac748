"""The agent's connection loop: dial out, hello, serve actions, deliver the outbox; reconnect forever.

Reconnects use exponential backoff with full jitter (``uniform(0, min(max, base·2^n))``), so a fleet
cut off at once does not return at once. Actions keep running across a lost connection; their frames
wait in the outbox and go out, in order, on the next connection (within the server's credit window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import random
import socket
import ssl
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from fazai import __version__, wire
from fazai.node.identity import Identity
from fazai.node.journal import Journal
from fazai.node.runner import Runner
from fazai.node.settings import AgentSettings
from fazai.telemetry.local import LocalSource
from fazai.telemetry.systemd import ServiceSource

log = logging.getLogger("fazai.agent")


class Refused(Exception):
    """The server will not take this agent (revoked, unknown): retrying will not help."""


def host_facts() -> dict[str, str]:
    """What the hello says about this machine."""
    distro = ""
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip().strip('"')
    return {
        "hostname": socket.gethostname(),
        "os": platform.system(),
        "distro": distro,
        "kernel": platform.release(),
        "arch": platform.machine(),
    }


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full jitter: a uniform delay in ``[0, min(cap, base·2^attempt)]``."""
    return (rng or random).uniform(0, min(cap, base * (2 ** min(attempt, 30))))


class Agent:
    """One node agent: identity, journal, runner and the reconnect loop."""

    def __init__(self, state_dir: Path, settings: AgentSettings):
        self.state_dir = state_dir
        self.settings = settings
        self.ident = Identity(state_dir)
        self.journal = Journal(state_dir / "journal.db")
        self._wake = asyncio.Event()
        self.runner = Runner(settings, self.journal, self._wake.set, settings.node)
        self.credits = 0
        self.sem = asyncio.Semaphore(settings.max_concurrent)
        self.tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.url = ""  # the gateway of the current (or last) connection

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Connect and serve until ``stop`` is set; raises :class:`Refused` when the server says no."""
        self.runner.recover()
        sampler = asyncio.create_task(self._telemetry(stop)) if self.settings.telemetry_s > 0 else None
        try:
            await self._connect_loop(stop)
        finally:
            if sampler is not None:
                sampler.cancel()
                with contextlib.suppress(BaseException):
                    await sampler

    async def _telemetry(self, stop: asyncio.Event) -> None:
        """Sample this node's load, CPU, memory, disk, network, service states and journal errors into
        the outbox, connected or not: the outbox keeps what a disconnected agent measured until the
        server acks it."""
        s = self.settings
        source = LocalSource()
        source.sample()  # CPU use needs a first reading to diff against
        services = (
            ServiceSource(s.watch_units, systemctl=s.systemctl, journalctl=s.journalctl)
            if s.service_telemetry
            else None
        )
        if services is not None:
            await services.sample()  # restarts and journal errors count from here
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), s.telemetry_s)
                return
            values = source.sample()
            ts = datetime.now(UTC).isoformat()
            batch = [wire.Metric(name=k, value=v, ts=ts) for k, v in values.items()]
            batch.append(wire.Metric(name="running_actions", value=float(len(self.tasks)), ts=ts))
            if services is not None:
                try:
                    svc = await services.sample()
                except Exception:  # a sampler bug must not stop the load/CPU/memory figures
                    log.exception("service telemetry failed")
                else:
                    batch += [
                        wire.Metric(name=k, value=v, ts=ts, labels=svc.labels.get(k, {}))
                        for k, v in svc.values.items()
                    ]
            self.runner.emit("telemetry.push", wire.TelemetryPush(batch=batch), None)

    async def _connect_loop(self, stop: asyncio.Event) -> None:
        attempt = 0
        urls = self.settings.gateways()
        turn = 0
        while not stop.is_set():
            started = time.monotonic()
            url = urls[turn % len(urls)]
            try:
                await self._session(stop, url)
                reason = "connection closed"
            except Refused:
                raise
            except InvalidStatus as e:
                status = e.response.status_code
                body = e.response.body.decode(errors="replace").strip() if e.response.body else ""
                if status == 403:
                    raise Refused(f"the gateway refused this node: {body}") from e
                reason = f"HTTP {status}: {body}"
            except ssl.SSLError as e:
                reason = f"TLS failed: {e.reason or e}"
            except (OSError, TimeoutError, ConnectionClosed, WebSocketException, wire.WireError) as e:
                reason = f"{type(e).__name__}: {e}"
            if time.monotonic() - started > 10:
                attempt = 0
            # The next server in the list: a dead replica's agents spread over the others. The backoff
            # grows once per round of the whole list, so a failover is quick and a total outage calm.
            turn += 1
            delay = backoff_delay(
                attempt // len(urls), self.settings.backoff_base_s, self.settings.backoff_max_s
            )
            attempt += 1
            nxt = urls[turn % len(urls)]
            log.warning("disconnected from %s (%s); reconnecting to %s in %.2f s", url, reason, nxt, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _session(self, stop: asyncio.Event, url: str) -> None:
        s = self.settings
        host = urlsplit(url).hostname
        async with connect(
            url,
            ssl=self.ident.client_context(),
            server_hostname=s.server_name or host,
            compression=None,
            max_size=wire.MAX_FRAME_BYTES,
            open_timeout=10,
            proxy=None,
            ping_interval=30,
            ping_timeout=30,
            close_timeout=2,
        ) as ws:
            facts = host_facts()
            # The control kinds this agent understands go with its allowed actions (wire.ADDED_IN).
            controls = [k for k in wire.CONTROL_KINDS if "command.exec" in s.capabilities]
            hello = wire.Hello(
                agent_version=__version__,
                capabilities=[*s.capabilities, *controls],
                pending=self.journal.pending(),
                limits=wire.Limits(max_concurrent=s.max_concurrent, max_output_bytes=s.max_output_bytes),
                **facts,
            )
            await ws.send(wire.frame("hello", hello, node=s.node))
            env, spec = wire.parse(await asyncio.wait_for(ws.recv(), 10))
            if env.kind == "error":
                raise Refused(f"the gateway refused the hello: {spec.message}")
            if env.kind != "ack" or not spec.accepted:
                raise wire.WireError(f"expected the hello's ack, got {env.kind}")
            self.credits = spec.credit
            if spec.limits is not None:
                self.runner.max_output = min(s.max_output_bytes, spec.limits.max_output_bytes)
            self.connections += 1
            self.url = url
            log.info("connected to %s as %s (credit %d)", url, s.node, self.credits)
            sender = asyncio.create_task(self._sender(ws))
            beat = asyncio.create_task(self._heartbeat(ws, spec.heartbeat_s or 15.0))
            stopper = asyncio.create_task(_close_on(stop, ws))
            try:
                if self.ident.needs_renewal(s.renew_fraction):
                    await ws.send(
                        wire.frame("cert.renew", wire.CertRenew(csr=self.ident.csr(s.node)), node=s.node)
                    )
                async for raw in ws:
                    await self._on_frame(ws, raw)
            finally:
                for t in (sender, beat, stopper):
                    t.cancel()
                for t in (sender, beat, stopper):
                    with contextlib.suppress(BaseException):
                        await t

    async def _on_frame(self, ws: ClientConnection, raw: str | bytes) -> None:
        env, spec = wire.parse(raw)
        if env.kind == "ack":
            self.journal.ack(spec.ids)
            self.credits += spec.credit
            self._wake.set()
        elif env.kind == "command.cancel":
            self.runner.cancel(spec.action, spec.reason)
        elif env.kind in wire.ACTION_KINDS:
            task = asyncio.create_task(self._run(env, spec))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif env.kind == "cert.issued":
            self.ident.save_cert(spec.cert)
            log.info("certificate renewed; valid until %s (used from the next connection)", spec.not_after)
        elif env.kind == "error":
            log.warning("server error %s: %s", spec.code, spec.message)
        else:
            log.warning("ignoring unexpected %s frame from the server", env.kind)

    async def _run(self, env: wire.Envelope, spec: Any) -> None:
        async with self.sem:
            try:
                await self.runner.handle(env, spec)
            except Exception:  # a bug in one action must not take the agent down
                log.exception("action %s failed", env.id)

    async def _sender(self, ws: ClientConnection) -> None:
        """Deliver the outbox in order, from the start (unacked frames are resent on each connection)."""
        last = 0
        while True:
            self._wake.clear()
            rows = self.journal.after(last, limit=min(self.credits, 256)) if self.credits > 0 else []
            if not rows:
                await self._wake.wait()
                continue
            for seq, text in rows:
                await ws.send(text)
                self.credits -= 1
                last = seq

    async def _heartbeat(self, ws: ClientConnection, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            load1, mem, uptime = _load()
            hb = wire.Heartbeat(load1=load1, mem_available_kb=mem, uptime_s=uptime, running=len(self.tasks))
            await ws.send(wire.frame("heartbeat", hb, node=self.settings.node))


def _load() -> tuple[float, int, float]:
    """(1-minute load, MemAvailable in kB, uptime in s) from /proc."""
    mem, uptime = 0, 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                mem = int(line.split()[1])
    with contextlib.suppress(OSError, ValueError):
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    return os.getloadavg()[0], mem, uptime


async def _close_on(stop: asyncio.Event, ws: ClientConnection) -> None:
    await stop.wait()
    await ws.close(1001, "agent stopping")
