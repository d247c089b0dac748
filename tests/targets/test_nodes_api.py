"""The daemon's ``/nodes`` and ``/agent/fanout``: the real app (lifespan, store, token auth) in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fazai.config import PathsSettings, Settings, SSHSettings
from fazai.server.app import create_app
from targets.sshd import SSHServer
from targets.test_fanout import WHERE, command_loop


@pytest.fixture
async def api(tmp_path: Path, sshd: SSHServer) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        paths=PathsSettings(state_dir=tmp_path),
        ssh=SSHSettings(known_hosts=sshd.known_hosts, key=sshd.user_key, connect_timeout_s=10),
    )
    app = create_app(settings, loop_fn=command_loop)
    token = settings.daemon_token_file.read_text().strip()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://fazaid", headers={"Authorization": f"Bearer {token}"}
        ) as c:
            c.sshd = sshd  # type: ignore[attr-defined]
            yield c


async def test_nodes_crud_labels_and_errors(api: httpx.AsyncClient) -> None:
    anon = await api.get("/nodes", headers={"Authorization": ""})
    assert anon.status_code == 401
    r = await api.post("/nodes", json={"name": "web-01", "transport": "local", "site": "sp", "tags": ["web"]})
    assert r.status_code == 201 and r.json()["site"] == "sp" and r.json()["status"] == "unknown"
    assert (await api.post("/nodes", json={"name": "web-01", "transport": "local"})).status_code == 409
    bad = await api.post("/nodes", json={"name": "x", "transport": "ssh"})
    assert bad.status_code == 400 and "needs an address" in bad.json()["detail"]
    r = await api.patch("/nodes/web-01", json={"add_tags": ["canary"], "labels": {"env": "prod"}})
    assert r.json()["tags"] == ["canary", "web"] and r.json()["labels"] == {"env": "prod"}
    r = await api.patch("/nodes/web-01", json={"remove_tags": ["web"], "labels": {"env": None}})
    assert r.json()["tags"] == ["canary"] and r.json()["labels"] == {}
    assert [n["name"] for n in (await api.get("/nodes", params={"selector": "tag=canary"})).json()] == [
        "web-01"
    ]
    sel = await api.get("/nodes", params={"selector": "tag"})
    assert sel.status_code == 400 and "key=value" in sel.json()["detail"]
    assert (await api.get("/nodes/web-01")).json()["facts"] is None
    assert (await api.get("/nodes/nope")).status_code == 404
    assert (await api.patch("/nodes/nope", json={})).status_code == 404
    assert (await api.delete("/nodes/web-01")).json() == {"name": "web-01", "removed": True}
    assert (await api.delete("/nodes/web-01")).status_code == 404


async def test_fanout_over_the_api(api: httpx.AsyncClient) -> None:
    sshd: SSHServer = api.sshd  # type: ignore[attr-defined]
    for name in ("a-ssh", "b-ssh"):
        body = {"name": name, "transport": "ssh", "address": sshd.host, "port": sshd.port, "tags": ["web"]}
        assert (await api.post("/nodes", json=body)).status_code == 201
    await api.post("/nodes", json={"name": "c-local", "transport": "local", "tags": ["web"]})
    r = await api.post("/agent/fanout", json={"goal": WHERE, "nodes": "tag=web", "concurrency": 2})
    assert r.status_code == 200
    rep = r.json()
    assert [(n["node"], n["status"], n["answer"], n["differs"]) for n in rep["nodes"]] == [
        ("a-ssh", "done", "over-ssh", False),
        ("b-ssh", "done", "over-ssh", False),
        ("c-local", "done", "here", True),
    ]
    assert rep["summary"] == "1 of 3 nodes differ from the most common answer (2 nodes)"
    # Each row's session is a real session of the daemon.
    s = await api.get(f"/agent/sessions/{rep['nodes'][0]['session']}")
    assert s.status_code == 200 and s.json()["mode"] == "ask"
    assert (await api.post("/agent/fanout", json={"goal": "x", "nodes": "=x"})).status_code == 400
    # A single-node run through /agent/generate refuses an unknown node with the reason.
    g = await api.post("/agent/generate", json={"goal": "true", "node": "nope"})
    assert g.status_code == 404 and "no node 'nope'" in g.json()["detail"]
