"""The console's fleet pages through the real app (in-process, real users): the overview by
org/site/group with state, heartbeat and open alerts; a node's facts, metrics, sessions, alerts and
knowledge tabs; playbook runs. Each is authorised per site, and hostile text stays text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import pytest_asyncio
from fleet_seed import HOSTILE, seed

from auth.app_env import OTHER, OWN, open_env

ESCAPED = "&lt;script&gt;window.__xss"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory):
    extra = "[telemetry]\nsample_interval_s = 0\n"
    async with open_env(Path(tmp_path_factory.mktemp("fleetpages")), extra=extra) as e:
        e.seeded = await seed(e.app.state.manager.store)  # type: ignore[attr-defined]
        yield e


def _clean(html: str) -> None:
    assert "<script>window" not in html and "<img src=x" not in html
    assert 'onerror="' not in html


@pytest.mark.asyncio(loop_scope="module")
async def test_overview_by_site_with_state_and_open_alerts(env) -> None:
    async with env.client(env.tokens["r-viewer"]) as c:
        r = await c.get("/console/fleet")
    assert r.status_code == 200
    html = r.text
    _clean(html)
    # Grouped by org / site / group; only the viewer's site (acme/paris) is listed.
    assert "acme / paris / front" in html and "acme / paris" in html
    assert 'id="node-web-01"' in html and 'id="node-here"' in html and "db-02" not in html
    row = re.search(r'<tr id="node-web-01">.*?</tr>', html, re.S).group(0)  # type: ignore[union-attr]
    assert "ssh" in row and "seen" in row and '?tab=alerts">2</a>' in row and "web env=prod" in row
    here = re.search(r'<tr id="node-here">.*?</tr>', html, re.S).group(0)  # type: ignore[union-attr]
    assert "unknown" in here and "never" in here
    assert re.search(r"2 nodes ·.*1 online.*0 offline.*2 open alerts", html, re.S)
    async with env.admin() as c:
        html = (await c.get("/console/fleet")).text
    assert "globex / berlin" in html and 'id="node-db-02"' in html
    async with env.client(env.tokens["nobody"]) as c:
        assert "No nodes yet that you may see" in (await c.get("/console/fleet")).text


@pytest.mark.asyncio(loop_scope="module")
async def test_node_tabs_show_their_data_escaped(env) -> None:
    async with env.client(env.tokens["r-viewer"]) as c:
        facts = (await c.get("/console/fleet/web-01")).text
        metrics = (await c.get("/console/fleet/web-01?tab=metrics")).text
        sessions = (await c.get("/console/fleet/web-01?tab=sessions")).text
        alerts = (await c.get("/console/fleet/web-01?tab=alerts")).text
        kb = (await c.get("/console/fleet/web-01?tab=kb")).text
    for page in (facts, metrics, sessions, alerts, kb):
        _clean(page)
    assert ESCAPED in facts and "6.1.0 x86_64" in facts and "85 %" in facts and "4 cores" in facts
    assert 'aria-current="page"' in facts and 'id="tab-metrics"' in facts
    # One sparkline per metric, current value and range over the window.
    assert metrics.count('<svg class="spark"') == 3 and "<polyline points=" in metrics
    row = re.search(r'<tr id="metric-disk_used_pct">.*?</tr>', metrics, re.S).group(0)  # type: ignore[union-attr]
    assert "<td>79 " in row and "<td>50</td>" in row and "<td>79</td>" in row
    assert ESCAPED in metrics  # the hostile metric name, as text
    assert env.seeded["web"] in sessions and "ran on it" in sessions and env.seeded["db"] not in sessions
    assert alerts.count('<tr class="alert">') == 2 and "ET POLICY ssh on a web node" in alerts
    assert "the other site" not in alerts and ESCAPED in alerts
    assert "retrieved in 1 session" in kb and ESCAPED in kb and "db tuning" not in kb


@pytest.mark.asyncio(loop_scope="module")
async def test_node_pages_are_authorised_per_site(env) -> None:
    async with env.client(env.tokens["r-admin"]) as c:  # admin on acme/paris only
        r = await c.get("/console/fleet/db-02")
        assert r.status_code == 403 and f"fleet.read needs viewer on {OTHER}" in r.text
        assert (await c.get("/console/fleet/db-02?tab=metrics")).status_code == 403
        assert (await c.get("/console/fleet/nope")).status_code == 404
        assert (await c.get("/console/fleet/web-01?tab=%3Cscript%3E")).status_code == 400
    async with env.client(env.tokens["nobody"]) as c:
        assert (await c.get("/console/fleet/web-01")).status_code == 403
    async with env.admin() as c:
        page = (await c.get("/console/fleet/db-02?tab=sessions")).text
    assert env.seeded["db"] in page


@pytest.mark.asyncio(loop_scope="module")
async def test_a_real_run_on_a_node_is_on_its_sessions_tab(env) -> None:
    async with env.client(env.tokens["r-operator"]) as c:
        async with c.stream(
            "POST", "/agent/generate", json={"goal": "uptime please", "node": "here", "site": OWN}
        ) as resp:
            assert resp.status_code == 200
            sid = resp.headers["x-session-id"]
            async for _ in resp.aiter_lines():
                pass
        page = (await c.get("/console/fleet/here?tab=sessions")).text
    assert sid in page and "uptime please" in page and "ran on it" in page


@pytest.mark.asyncio(loop_scope="module")
async def test_playbooks_page_renders_without_runs(env) -> None:
    async with env.client(env.tokens["r-viewer"]) as c:
        r = await c.get("/console/playbooks")
    assert r.status_code == 200 and "No playbook runs you may see" in r.text
    assert "Loaded playbooks" not in r.text  # describing playbooks is for automation.manage (operator+)
    assert json.dumps(HOSTILE) not in r.text
