"""The daemon's automation in process: firewall telemetry from the simulator, node state and metric
playbooks, schedule ticks — each run a session in the real store."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fazai.config import Settings
from fazai.opnsense.store import FirewallEntry, FirewallStore
from fazai.sessions.automation import Automation
from fazai.sessions.manager import SessionManager
from fazai.sessions.playbook_loop import PlaybookLoop, build_env
from fazai.store import Store
from fazai.telemetry.opnsense_source import firewall_values
from opnsense_sim.eve import SSH_SCAN_ALERT
from opnsense_sim.keys import KEY, SECRET, install_keys

from .conftest import HookReceiver, free_port

DOWN = """
name: fw-down
trigger: {node_state: {node: "fw:*", to: down}}
steps:
  - webhook: {url: "HOOK", message: "{summary}"}
"""

DISK = """
name: disk-full
trigger: {metric: {name: disk_used_pct, node: "web*", above: 90, for: 2m}}
steps:
  - webhook: {url: "HOOK", message: "{metric.node} disk at {metric.value}%"}
"""


@pytest.fixture
async def auto(tmp_path: Path, sim_server) -> AsyncIterator[tuple[Automation, Any, HookReceiver]]:
    sim, url = sim_server
    sim.reset()
    install_keys(sim)
    hook = HookReceiver()
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "down.yaml").write_text(DOWN.replace("HOOK", hook.url))
    (books / "disk.yaml").write_text(DISK.replace("HOOK", hook.url))
    state = tmp_path / "state"
    FirewallStore(state).add(FirewallEntry(name="main", url=url, timeout_s=5), KEY, SECRET)
    FirewallStore(state).add(
        FirewallEntry(name="gone", url=f"http://127.0.0.1:{free_port()}", timeout_s=1), "k", "s"
    )
    settings = Settings.model_validate(
        {"paths": {"state_dir": str(state), "runtime_dir": str(tmp_path / "run")},
         "ai_provider": {"provider": "scripted"}, "kb": {"enabled": False},
         "telemetry": {"sample_interval_s": 0},
         "playbooks": {"dir": str(books), "detect_local": False}}
    )  # fmt: skip
    store = await Store.open(settings.database_url)
    loop = PlaybookLoop(settings, build_env(settings))
    manager = SessionManager(settings, store, loop_fn=loop)
    await manager.start(recover=False)
    a = Automation(settings, manager, loop)
    await a.start()
    try:
        yield a, sim, hook
    finally:
        await a.stop()
        await manager.stop()
        await loop.aclose()
        await store.close()
        hook.close()


async def _finish(a: Automation, sids: list[str]) -> list[str]:
    return [await a.manager.wait(s) for s in sids]


async def test_firewall_telemetry(auto) -> None:
    a, _sim, _hook = auto
    assert await a.sample_firewall_once("main") == []  # first state "up": no change from down
    latest = await a.metrics.latest("fw:main")
    values = {name: v for (_, name), (_, v) in latest.items()}
    assert values["if_wan_up"] == 1.0 and values["gw_wan_gw_online"] == 1.0
    assert values["gw_wan_gw_delay_ms"] == 1.2 and values["mem_used_pct"] == 25.0 and values["load5"] == 0.2


@pytest.mark.slow  # ~10 s: the client's real connect retries with backoff, twice
async def test_an_unreachable_firewall_is_a_node_gone_down(auto) -> None:
    a, _sim, hook = auto
    # An unreachable firewall is a node that went down: the node_state playbook runs.
    sids = await a.sample_firewall_once("gone")
    assert len(sids) == 1 and await _finish(a, sids) == ["done"]
    assert hook.bodies[0]["text"] == "node fw:gone went from unknown to down"
    assert await a.sample_firewall_once("gone") == []  # still down: no new run


async def test_metric_threshold_held_starts_one_run(auto) -> None:
    a, _sim, hook = auto
    assert await a.record_metrics("web1", {"disk_used_pct": 95}, ts=1000) == []
    assert await a.record_metrics("web1", {"disk_used_pct": 96}, ts=1060) == []
    sids = await a.record_metrics("web1", {"disk_used_pct": 97}, ts=1120)
    assert await _finish(a, sids) == ["done"]
    assert await a.record_metrics("web1", {"disk_used_pct": 98}, ts=1180) == []
    assert [b["text"] for b in hook.bodies] == ["web1 disk at 97.0%"]
    runs = await a.runs()
    assert runs[0]["playbook"] == "disk-full" and runs[0]["trigger"]["metric"]["value"] == 97.0
    rec = await a.manager.store.get_session(runs[0]["session"])
    assert rec is not None and rec.mode == "playbook" and rec.status == "done"


def test_firewall_values_from_recorded_replies() -> None:
    v = firewall_values(
        [{"identifier": "wan", "status": "down"}, {"identifier": "", "status": "up"}],
        [{"name": "WAN-GW", "status": "down", "loss": "100.0 %", "delay": "~"}],
        {"resources": {"memory": {"total": "0"}}, "time": {"loadavg": "bad"}},
    )
    assert v == {"if_wan_up": 0.0, "gw_wan_gw_online": 0.0, "gw_wan_gw_loss_pct": 100.0}


async def test_rate_limit_refuses_runs_past_the_limit(auto) -> None:
    a, _sim, _hook = auto
    pb = next(b for b in a.books if b.name == "fw-down")
    pb.rate_limit.max_runs = 1
    first = await a.start_playbook(pb, {"summary": "one", "trigger": "node_state"})
    assert first and await a.start_playbook(pb, {"summary": "two", "trigger": "node_state"}) is None
    assert "rate limit" in a.skipped[-1]["reason"]
    await asyncio.wait_for(a.manager.wait(first), 30)


async def test_ids_alerts_polled_from_the_firewall_api_start_playbooks(auto) -> None:
    a, sim, hook = auto
    (a.playbook_dir / "ids.yaml").write_text(
        f'name: ids\ntrigger: {{alert: {{signature_id: 2001219, source: "ids:main"}}}}\n'
        f'steps:\n  - webhook: {{url: "{hook.url}", message: "{{alert.src_ip}} via {{alert.source}}"}}\n'
    )
    a.reload()
    old = copy.deepcopy(SSH_SCAN_ALERT)
    sim.add_eve(old)
    seen: set = set()
    assert (await a.poll_alerts_once("main", seen, first=True))["new"] == []  # predates the daemon
    fresh = copy.deepcopy(SSH_SCAN_ALERT)
    fresh["src_ip"] = "198.51.100.99"
    sim.add_eve(fresh)
    out = await a.poll_alerts_once("main", seen, first=False)
    assert len(out["new"]) == 1 and await _finish(a, out["sessions"]) == ["done"]
    assert [b["text"] for b in hook.bodies] == ["198.51.100.99 via ids:main"]
    assert (await a.poll_alerts_once("main", seen, first=False))["new"] == []  # each alert once
