"""Real components for playbook runs: the OPNsense simulator over HTTP, nftables inside network
namespaces this test creates (``unshare -n``), an aiosmtpd SMTP sink and a stdlib HTTP receiver.

Ports: the receivers bind in 42500–42599 (the first free one); the simulator takes a kernel-chosen one.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fazai.config import SafetySettings
from fazai.opnsense.client import ClientOptions, OPNsenseClient
from fazai.opnsense.firewall import Firewall
from fazai.playbooks.env import FirewallPool, PlaybookEnv
from fazai.playbooks.guards import Protected
from fazai.safety import SafetyPolicy
from fazai.targets.local import LocalTarget
from fazai.targets.netns import NetnsTarget
from opnsense_sim import Simulator, serve
from opnsense_sim.keys import KEY, SECRET, install_keys

PORTS = range(42500, 42600)


def free_port() -> int:
    """The first port of this suite's range that binds on loopback."""
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in 42500-42599")


# -- OPNsense simulator -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sim_server() -> Iterator[tuple[Simulator, str]]:
    sim = Simulator("26.1")
    with serve(sim) as url:
        yield sim, url


@pytest.fixture
async def firewall(sim_server, tmp_path: Path) -> AsyncIterator[tuple[Firewall, Simulator]]:
    sim, url = sim_server
    sim.reset()
    install_keys(sim)
    client = OPNsenseClient(url, KEY, SECRET, ClientOptions(timeout_s=5, read_retries=1, backoff_s=0.01))
    fw = Firewall(client, tmp_path / "fw", clock=sim.clock)
    await fw.connect()
    yield fw, sim
    await client.aclose()


# -- nftables in network namespaces -------------------------------------------------------------


class Netns:
    """A network namespace held open by a sleeping process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["unshare", "-n", "sleep", "600"])
        path = Path(f"/proc/{self.proc.pid}/ns/net")
        deadline = time.monotonic() + 5
        # The namespace exists once the child has exec'd sleep (its netns differs from ours).
        while time.monotonic() < deadline:
            try:
                if path.resolve() != Path("/proc/self/ns/net").resolve() and (
                    Path(f"/proc/{self.proc.pid}/comm").read_text().strip() == "sleep"
                ):
                    break
            except OSError:
                pass
            time.sleep(0.01)
        self.path = str(path)

    def nft(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", f"--net={self.path}", "nft", *args], capture_output=True, text=True, timeout=10
        )

    def elements(self, table: str = "fazai", set_name: str = "blocklist") -> list[str]:
        r = self.nft("-j", "list", "set", "inet", table, set_name)
        if r.returncode != 0:
            return []
        out = []
        for item in json.loads(r.stdout)["nftables"]:
            for e in item.get("set", {}).get("elem", []):
                out.append(e if isinstance(e, str) else json.dumps(e))
        return out

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _netns_available() -> str | None:
    if shutil.which("nft") is None:
        return "nft is not installed (scripts/test-setup.sh installs the nftables package)"
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "unshare/nsenter (util-linux) are missing"
    r = subprocess.run(["unshare", "-n", "nft", "list", "ruleset"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace with nftables here: {r.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="session")
def netns_ok() -> None:
    why = _netns_available()
    if why:
        pytest.skip(why)


@pytest.fixture
def namespaces(netns_ok) -> Iterator[list[Netns]]:
    """Three fresh network namespaces (nodes web1..web3)."""
    with ExitStack() as stack:
        spaces = []
        for _ in range(3):
            ns = Netns()
            stack.callback(ns.close)
            spaces.append(ns)
        yield spaces


# -- notification receivers ---------------------------------------------------------------------


class HookReceiver:
    """A real HTTP server recording POSTed JSON bodies; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                recv.bodies.append(json.loads(self.rfile.read(n) or b"{}"))
                self.send_response(recv.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[HookReceiver]:
    h = HookReceiver()
    yield h
    h.close()


class MailSink:
    """An aiosmtpd SMTP server keeping every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.messages.append(envelope)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.address = f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp() -> Iterator[MailSink]:
    m = MailSink()
    yield m
    m.close()


# -- environment ---------------------------------------------------------------------------------


class Approver:
    """The run's interaction: answers approvals with ``answer`` and records what was asked."""

    def __init__(self, answer: bool = True):
        self.answer = answer
        self.asked: list[tuple[Any, str, str]] = []

    async def approve(self, action_id: Any, summary: str, risk: str, reasons: Any) -> bool:
        self.asked.append((action_id, summary, risk))
        return self.answer


class Sleeps:
    """Records backoff delays instead of sleeping them (the retries themselves are real)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, s: float) -> None:
        self.delays.append(s)


def make_env(
    fw: Firewall | None = None, spaces: list[Netns] | None = None, *, protected: Protected | None = None
) -> PlaybookEnv:
    nodes: dict[str, Any] = {"local": LocalTarget()}
    for i, ns in enumerate(spaces or [], 1):
        nodes[f"web{i}"] = NetnsTarget(ns.path, name=f"web{i}")
    return PlaybookEnv(
        policy=SafetyPolicy(SafetySettings()),
        nodes=nodes,
        firewalls=FirewallPool.of({"main": fw}) if fw is not None else None,
        protected=protected or Protected.build(management=["10.0.0.0/8"], detect_local=False),
        sleep=Sleeps(),
    )
