"""Fixtures for the OPNsense connector: simulators of several versions served over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from fazai.config import Settings
from fazai.opnsense.client import ClientOptions, OPNsenseClient
from fazai.opnsense.firewall import Firewall
from fazai.opnsense.store import FirewallEntry, FirewallStore
from opnsense_sim import Simulator, serve
from opnsense_sim.keys import KEY, SECRET, install_keys

VERSIONS = ["25.1", "25.7", "26.1", "26.7"]
# Also served: a later 26.1 patch, whose searchRule differs from the 26.1 release.
SERVED = [*VERSIONS, "26.1.11"]


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, tuple[Simulator, str]]]:
    """One simulator per version, each on its own free port."""
    out: dict[str, tuple[Simulator, str]] = {}
    with ExitStack() as stack:
        for v in SERVED:
            sim = Simulator(v)
            out[v] = (sim, stack.enter_context(serve(sim)))
        yield out


def registered_firewall(servers, version: str, tmp_path: Path) -> tuple[Simulator, Settings]:
    """A clean simulator of ``version`` registered as ``fw1`` (as `fazai opnsense add` does), and the
    settings whose state dir holds it."""
    sim, url = servers[version]
    sim.reset()
    sim.requests.clear()
    install_keys(sim)
    settings = Settings(paths={"state_dir": tmp_path / "state"})
    FirewallStore(settings.paths.state_dir).add(FirewallEntry(name="fw1", url=url), KEY, SECRET)
    return sim, settings


@pytest.fixture
def make_fw(servers, tmp_path: Path):
    """Factory: (version, key, secret, timeout) → (Firewall, Simulator), clean state."""

    async def make(version: str, key: str = KEY, secret: str = SECRET, timeout: float = 5.0):  # noqa: ASYNC109
        sim, url = servers[version]
        sim.reset()
        sim.clock.now = 1_750_000_000.0
        install_keys(sim)
        client = OPNsenseClient(
            url, key, secret, ClientOptions(timeout_s=timeout, read_retries=2, backoff_s=0.01)
        )
        fw = Firewall(client, tmp_path / f"fw-{version}", clock=sim.clock)
        return fw, sim

    return make


@pytest.fixture(params=VERSIONS)
async def fw(request, make_fw) -> AsyncIterator[tuple[Firewall, Simulator]]:
    """A connected Firewall on each simulated version."""
    f, sim = await make_fw(request.param)
    await f.connect()
    yield f, sim
    await f.client.aclose()


@pytest.fixture(params=["25.1", "26.1"])
async def fw2(request, make_fw) -> AsyncIterator[tuple[Firewall, Simulator]]:
    """Two versions (for the less version-sensitive operations)."""
    f, sim = await make_fw(request.param)
    await f.connect()
    yield f, sim
    await f.client.aclose()
