from __future__ import annotations

import pytest

from fleet.harness import AgentProc, FleetDaemon


@pytest.fixture
def fleet(tmp_path):
    d = FleetDaemon(tmp_path / "srv").start()
    agents: list[AgentProc] = []
    d.agents = agents  # type: ignore[attr-defined]
    yield d
    for a in agents:
        a.stop()
    d.stop()


def enrolled(fleet: FleetDaemon, name: str, *run_args: str) -> AgentProc:
    """An agent enrolled with a fresh token and running."""
    a = AgentProc(fleet.home, name)
    res = a.enroll(fleet, fleet.token())
    assert res.returncode == 0, res.stderr
    fleet.agents.append(a)  # type: ignore[attr-defined]
    a.start(*run_args)
    fleet.wait_connected(name)
    return a
