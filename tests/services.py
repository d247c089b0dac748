"""Real PostgreSQL and NATS servers for tests: Debian's binaries, temp dirs, loopback, any port.

``FAZAI_TEST_PORTS=42600-42699`` keeps every port a test opens inside that range (concurrent test
runs on one machine each get their own range); without it the kernel picks free ports.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

_taken: set[int] = set()


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback TCP port (inside ``$FAZAI_TEST_PORTS`` when set), never the same one twice."""
    spec = os.environ.get("FAZAI_TEST_PORTS", "")
    if spec:
        lo, _, hi = spec.partition("-")
        for port in range(int(lo), int(hi or lo) + 1):
            if port not in _taken and _port_is_free(port):
                _taken.add(port)
                return port
        raise RuntimeError(f"no free port left in FAZAI_TEST_PORTS={spec}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _taken.add(port)
    return port


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary (Debian keeps them under /usr/lib/postgresql/<v>/bin)."""
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else shutil.which(name)


class Postgres:
    """A throwaway PostgreSQL cluster (trust auth, fsync off) that can be stopped and started again."""

    def __init__(self, port: int | None = None):
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise FileNotFoundError("PostgreSQL is not installed (scripts/test-setup.sh installs it)")
        self.pg_ctl = pg_ctl
        self.port = port or free_port()
        self.root = tempfile.mkdtemp(prefix="fazai-pg-")
        self.data = os.path.join(self.root, "data")
        self.as_pg: list[str] = []
        if os.geteuid() == 0:
            # initdb and postgres refuse to run as root: run them as the postgres user.
            shutil.chown(self.root, "postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*self.as_pg, initdb, "-N", "-D", self.data, "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        """``postgresql://`` URL of the ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> Postgres:
        """Start the server and wait until it accepts connections."""
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        subprocess.run(
            [
                *self.as_pg,
                self.pg_ctl,
                "-D",
                self.data,
                "-o",
                opts,
                "-l",
                os.path.join(self.root, "log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        return self

    def stop(self) -> None:
        """Stop at once (like a crash: clients lose their connections)."""
        subprocess.run(
            [*self.as_pg, self.pg_ctl, "-D", self.data, "-m", "immediate", "stop"], capture_output=True
        )

    def destroy(self) -> None:
        """Stop and remove the cluster."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class Nats:
    """``nats-server -js`` with its own store dir; restartable with the same data (like a real restart)."""

    def __init__(self, port: int | None = None):
        self.bin = shutil.which("nats-server") or (
            "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
        )
        if not self.bin:
            raise FileNotFoundError("nats-server is not installed (scripts/test-setup.sh installs it)")
        self.port = port or free_port()
        self.root = tempfile.mkdtemp(prefix="fazai-nats-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``nats://`` URL of the server."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> Nats:
        """Start and wait until the client port accepts connections."""
        self.proc = subprocess.Popen(
            [
                self.bin,
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-sd",
                self.root,
                "-l",
                os.path.join(self.root, "log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(self.port)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop (kill -9: the store dir keeps what JetStream acknowledged)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def destroy(self) -> None:
        """Stop and remove the store dir."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """A new, empty database on the server of ``url`` (dropped first if it exists): its URL."""
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())
    return url.rsplit("/", 1)[0] + "/" + name
