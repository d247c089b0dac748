"""The fleet's hub and listeners in the test's own event loop, with real ``fazai-agent`` processes.

Quicker than a whole fazaid (no HTTP, no CLI processes) and still the real thing on the wire: real
mTLS from the fleet CA, real agents that enroll with a token and run commands with bash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from daemon_harness import REPO
from fazai.config import Settings
from fazai.fleet.gateway import Fleet, start_fleet
from fazai.store import Store
from fleet.harness import free_port


@contextlib.asynccontextmanager
async def fleet_with_agents(
    tmp: Path, names: list[str], fleet_settings: dict[str, Any] | None = None
) -> AsyncIterator[tuple[Fleet, Store, dict[str, asyncio.subprocess.Process]]]:
    """A started fleet on a fresh store and one running, connected agent per name."""
    gw, en = free_port(), free_port()
    settings = Settings.model_validate(
        {
            "paths": {"state_dir": str(tmp / "srv")},
            "fleet": {"enabled": True, "gateway_port": gw, "enroll_port": en, **(fleet_settings or {})},
        }
    )
    store = await Store.open(f"sqlite+aiosqlite:///{tmp / 'f.db'}")
    fleet = await start_fleet(settings, store.engine)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: dict[str, asyncio.subprocess.Process] = {}

    def base(name: str) -> list[str]:
        return [sys.executable, "-m", "fazai.node", "--state-dir", str(tmp / f"agent-{name}")]

    async def enroll(name: str) -> None:
        token, _, _ = await fleet.registry.create_token("lab", 600)
        p = await asyncio.create_subprocess_exec(
            *base(name), "enroll", "--server", f"wss://127.0.0.1:{en}", "--token", token, "--name", name,
            cwd=REPO, env=env, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(p.communicate(), 120)
        assert p.returncode == 0, err.decode()

    try:
        await asyncio.gather(*(enroll(n) for n in names))
        for name in names:
            procs[name] = await asyncio.create_subprocess_exec(
                *base(name), "run", cwd=REPO, env=env, stderr=asyncio.subprocess.DEVNULL
            )
        for _ in range(2400):
            if all(n in fleet.hub.conns for n in names):
                break
            await asyncio.sleep(0.05)
        missing = [n for n in names if n not in fleet.hub.conns]
        assert not missing, f"agents never connected: {missing}"
        yield fleet, store, procs
    finally:
        for p in procs.values():
            if p.returncode is None:
                p.terminate()
        for p in procs.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(p.wait(), 15)
        await fleet.stop()
        await store.close()
