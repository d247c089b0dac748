"""Targeting: runs on inventory nodes (real sshd, real local target), fan-out and its report.

The loop here is a stand-in for the model (the runner takes any loop function): it runs the goal as
one command on the run's target and answers with its output. Everything around it is real: the
inventory in SQLite, the session store, the manager, the node targets and their connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from fazai.config import PathsSettings, Settings, SSHSettings
from fazai.protocol import Event
from fazai.sessions.fanout import fan_out
from fazai.sessions.manager import RunnerError, RunOptions, SessionManager
from fazai.store import Store
from fazai.store.inventory import Inventory
from fazai.targets.local import LocalTarget
from targets.sshd import SSHServer, free_port, start_sshd

WHERE = '[ -n "$SSH_CONNECTION" ] && echo over-ssh || echo here'


async def command_loop(goal: str, *, session_id: str, options: Any, **_: Any) -> AsyncIterator[Event]:
    target = options.target or LocalTarget()
    res = await target.run(goal, timeout=20)
    yield Event(session=session_id, kind="action", data={"action": 1, "kind": "shell", "command": goal,
                                                          "target": target.name})  # fmt: skip
    yield Event(session=session_id, kind="done", data={"answer": res.stdout.strip(), "status": "success"})


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A second sshd whose host key nobody trusted."""
    server = start_sshd(tmp_path_factory.mktemp("stranger"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def manager(tmp_path: Path, sshd: SSHServer, stranger: SSHServer) -> AsyncIterator[SessionManager]:
    settings = Settings(
        paths=PathsSettings(state_dir=tmp_path),
        ssh=SSHSettings(known_hosts=sshd.known_hosts, key=sshd.user_key, connect_timeout_s=10),
    )
    store = await Store.open(settings.database_url)
    m = SessionManager(settings, store, loop_fn=command_loop)
    await m.start()
    inv = Inventory(store.engine)
    for name in ("web-01", "web-02", "web-03"):
        await inv.add_node(name, transport="ssh", address=sshd.host, port=sshd.port, site="sp", tags=["web"])
    await inv.add_node("web-local", transport="local", site="sp", tags=["web"])
    # A server whose host key is not in known_hosts: refused.
    await inv.add_node("web-alias", transport="ssh", address=stranger.host, port=stranger.port, site="sp",
                       tags=["web"])  # fmt: skip
    await inv.add_node(
        "web-down", transport="ssh", address="127.0.0.1", port=free_port(), site="sp", tags=["web"]
    )
    await inv.add_node("web-agent", transport="agent", site="sp", tags=["web"])
    await inv.add_node("db-01", transport="ssh", address=sshd.host, port=sshd.port, site="rj", tags=["db"])
    try:
        yield m
    finally:
        await m.stop()
        await store.close()


async def test_a_run_on_a_node_uses_its_target_and_one_reused_connection(manager: SessionManager) -> None:
    for _ in range(2):
        run = await manager.start_run(goal=WHERE, options=RunOptions(node="web-01"))
        assert await manager.wait(run.session_id) == "done"
        events = await manager.store.events(run.session_id)
        assert events[0].data["target"] == "web-01" and events[-1].data["answer"] == "over-ssh"
    _, target = await manager.nodes.target_for("web-01")
    assert target.connects == 1
    node = await Inventory(manager.store.engine).require("web-01")
    assert node.last_heartbeat is not None  # a login worked: heard from


async def test_unknown_and_unreachable_nodes_are_refused_with_the_reason(manager: SessionManager) -> None:
    with pytest.raises(RunnerError, match="no node 'nope'") as e:
        await manager.start_run(goal="true", options=RunOptions(node="nope"))
    assert e.value.status == 404
    with pytest.raises(RunnerError, match=r"unreachable: the host key of .* is not known") as e:
        await manager.start_run(goal="true", options=RunOptions(node="web-alias"))
    assert e.value.status == 503 and "fazai ssh trust 127.0.0.1 --port" in str(e.value)


async def test_fan_out_reports_every_node_and_how_many_differ(manager: SessionManager) -> None:
    report = await fan_out(manager, "site=sp,tag=web", WHERE, RunOptions(mode="ask"), concurrency=3)
    rows = {r.node: r for r in report.results}
    assert sorted(rows) == ["web-01", "web-02", "web-03", "web-agent", "web-alias", "web-down", "web-local"]
    assert all(
        rows[n].status == "done" and rows[n].answer == "over-ssh" for n in ("web-01", "web-02", "web-03")
    )
    assert rows["web-local"].answer == "here" and rows["web-local"].differs
    assert rows["web-down"].status == "unreachable" and "cannot connect" in (rows["web-down"].error or "")
    assert rows["web-alias"].status == "unreachable" and "not known" in (rows["web-alias"].error or "")
    assert rows["web-agent"].status == "unsupported" and rows["web-agent"].session is None
    summary = report.summary()
    assert summary.startswith("1 of 7 nodes differ from the most common answer (3 nodes)")
    assert "3 unreachable" not in summary and "2 unreachable (web-alias, web-down)" in summary
    assert "1 unsupported (web-agent)" in summary
    d = report.to_dict()
    assert d["total"] == 7 and d["differ"] == 1 and d["answered"] == 4
    # Each node's run is its own session in the store.
    sessions = {r.session for r in report.results if r.session}
    assert len(sessions) == 4


async def test_fan_out_of_a_selector_that_matches_nothing(manager: SessionManager) -> None:
    report = await fan_out(manager, "site=nowhere", "true")
    assert report.results == [] and "no node matches" in report.summary()


async def test_fan_out_of_a_plain_command_needs_no_model(manager: SessionManager) -> None:
    # mode "command": the runner's own no-model loop, whatever loop function the manager was given.
    report = await fan_out(manager, "tag=web,name=web-0*", "uname -r", RunOptions(mode="command"))
    assert [(r.node, r.status) for r in report.results] == [
        ("web-01", "done"),
        ("web-02", "done"),
        ("web-03", "done"),
    ]
    import os

    assert {r.answer for r in report.results} == {os.uname().release}
    events = await manager.store.events(report.results[0].session or "")
    kinds = [e.kind for e in events]
    assert kinds[:3] == ["node", "context", "action"] and "exec_log" in kinds
    assert kinds[-2:] == ["exec_end", "done"] and events[2].data["action"]["target"] == "web-01"
    # Only read-only commands run this way.
    refused = await fan_out(manager, "name=web-01", "rm -rf /tmp/x", RunOptions(mode="command"))
    r = refused.results[0]
    assert r.status == "failed" and r.answer and r.answer.startswith("refused: only read-only")
    assert "exec_end" not in [e.kind for e in await manager.store.events(r.session or "")]


async def test_a_node_session_continues_on_its_node_only(manager: SessionManager) -> None:
    run = await manager.start_run(goal=WHERE, options=RunOptions(node="web-02"))
    assert await manager.wait(run.session_id) == "done"
    first = await manager.store.events(run.session_id)
    assert first[0].kind == "node" and first[0].data["node"] == "web-02"
    # Continued without --node: it goes back to web-02 (never to this machine).
    again = await manager.start_run(session_id=run.session_id, goal=WHERE)
    assert await manager.wait(again.session_id) == "done"
    events = await manager.store.events(run.session_id)
    assert events[-1].data["answer"] == "over-ssh" and [e.kind for e in events].count("node") == 2
    with pytest.raises(RunnerError, match="ran on node web-02") as e:
        await manager.start_run(session_id=run.session_id, goal="true", options=RunOptions(node="web-01"))
    assert e.value.status == 409
    local = await manager.start_run(goal="true")
    await manager.wait(local.session_id)
    with pytest.raises(RunnerError, match="ran on this machine"):
        await manager.start_run(session_id=local.session_id, goal="true", options=RunOptions(node="web-01"))
