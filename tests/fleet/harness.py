"""Real fazaid (fleet listeners on) and real ``fazai-agent`` processes on loopback, for the fleet tests.

Ports come from 42200–42399 (this suite's range), each checked free before use.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from daemon_harness import REPO, Daemon

# FAZAI_TEST_FLEET_PORTS=LO-HI moves the range (several checkouts testing at once on one machine).
_LO, _HI = (int(x) for x in os.environ.get("FAZAI_TEST_FLEET_PORTS", "42200-42399").split("-"))
_next = [_LO + (os.getpid() % 50) * 4 % (_HI - _LO + 1)]


def free_port() -> int:
    """A free loopback port in 42200–42399 (in ``$FAZAI_TEST_PORTS`` when set, see tests/services.py)."""
    if os.environ.get("FAZAI_TEST_PORTS"):
        from services import free_port as in_range

        return in_range()
    span = _HI - _LO + 1
    for _ in range(span):
        port = _next[0]
        _next[0] = _LO + (port + 1 - _LO) % span
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_LO}-{_HI}")


class FleetDaemon(Daemon):
    """fazaid with ``[fleet] enabled``; the fleet ports stay fixed across restarts."""

    def __init__(
        self,
        home: Path,
        *,
        approval: bool = False,
        extra: str = "",
        daemon_extra: str = "",
        script: list[str] | None = None,
    ):
        self.gateway_port = free_port()
        self.enroll_port = free_port()
        fleet = f"""
[fleet]
enabled = true
gateway_port = {self.gateway_port}
enroll_port = {self.enroll_port}
require_approval = {"true" if approval else "false"}
revocation_poll_s = 0.2
heartbeat_s = 2
{extra}
"""
        # daemon_extra goes in [daemon] (store URL, replica id), extra at the end of [fleet].
        super().__init__(home, script or [], extra=daemon_extra + fleet)

    def start(self, timeout: float = 120.0) -> FleetDaemon:
        # A loaded 2-core machine can take longer than the plain daemon tests allow to import and migrate.
        super().start(timeout)
        return self

    @property
    def enroll_url(self) -> str:
        return f"wss://127.0.0.1:{self.enroll_port}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "FAZAI_CONFIG": str(self.config), "PYTHONUNBUFFERED": "1"}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``fazai ARGS`` against this daemon's config."""
        res = subprocess.run(
            [sys.executable, "-m", "fazai.cli.main", *args],
            env=self.env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=240,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"fazai {' '.join(args)} failed: {res.stdout}\n{res.stderr}")
        return res

    def token(self, site: str = "sp", ttl: str = "1h") -> str:  # type: ignore[override]
        return json.loads(self.cli("nodes", "token", "--site", site, "--ttl", ttl, "--json").stdout)["token"]

    @property
    def api_token(self) -> str:
        return (self.home / "state" / "daemon.token").read_text().strip()

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_token}"}, timeout=60
        )

    def submit(self, node: str, command: str, **spec: Any) -> str:
        with self.http() as c:
            r = c.post(
                "/fleet/actions",
                json={"nodes": [node], "kind": "command.exec", "spec": {"command": command, **spec}},
            )
            assert r.status_code == 202, r.text
            return r.json()[0]["id"]

    def wait_action(self, action: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.http() as c:
            while True:
                r = c.get(f"/fleet/actions/{action}", params={"wait": 2})
                row = r.json()
                if row.get("state") in ("done", "failed") or time.monotonic() > deadline:
                    return row

    def connected(self) -> list[str]:
        with self.http() as c:
            return [a["node"] for a in c.get("/fleet/agents").json()["connected"]]

    def wait_connected(self, node: str, timeout: float = 90, present: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while (node in self.connected()) != present:
            if time.monotonic() > deadline:
                agent_log = "".join(line for a in getattr(self, "agents", []) for line in a.lines[-15:])
                raise AssertionError(
                    f"{node} {'never connected' if present else 'still connected'}:\n"
                    + agent_log
                    + "".join(self.lines[-20:])
                )
            time.sleep(0.1)

    def logged(self, event: str) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            if f'"{event}"' in line:
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out


class AgentProc:
    """A real ``fazai-agent`` process with its own state dir."""

    def __init__(self, home: Path, name: str):
        self.state = home / f"agent-{name}"
        self.name = name
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    def _cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "fazai.node", "--state-dir", str(self.state), *args]

    def enroll(self, daemon: FleetDaemon, token: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._cmd("enroll", "--server", daemon.enroll_url, "--token", token, "--name", self.name, *extra),
            capture_output=True,
            text=True,
            timeout=240,
            cwd=REPO,
        )

    def start(self, *extra: str) -> AgentProc:
        self.proc = subprocess.Popen(
            self._cmd("run", "--backoff-base", "0.2", "--backoff-max", "1", *extra),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        threading.Thread(target=self._pump, daemon=True).start()
        return self

    def _pump(self) -> None:
        assert self.proc and self.proc.stderr
        for line in self.proc.stderr:
            self.lines.append(line)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
