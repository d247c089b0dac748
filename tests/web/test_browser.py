"""The console in a real browser (chromium + Playwright) against a real fazaid with the scripted
provider: sign in, watch a live session, approve an action and see it run, abort another, a viewer
sees no approve button and gets 403 from the API, hostile text stays text; the fleet pages over a
seeded fleet (nodes, metrics, alerts, sessions) and a playbook run waiting for its approver role.
Screenshots of each page go to tests/artifacts/."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest
from fleet_seed import seed

from daemon_harness import Daemon, action
from fazai.auth import Role, Scope
from fazai.auth.service import AuthService
from fazai.store import Store

pytestmark = pytest.mark.browser

PASSWORD = "browser test password"
HOSTILE_GOAL = "<img src=x onerror=\"window.__xss='goal'\"><script>window.__xss='goal2'</script>"
HOSTILE_OUT = "<script>window.__xss='output'</script>"


# A playbook of acme/paris whose one step only an admin may approve.
GATED = """
name: gated-probe
site: acme/paris
trigger: {alert: {signature_id: 999}}
approvals: {read_only: admin, changes_state: admin, destructive: admin}
steps:
  - id: probe
    shell: {command: "true", targets: [here]}
"""


def _users(home: Path) -> None:
    async def go() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{home / 'state' / 'fazai.db'}")
        svc = AuthService(store.engine, home / "state")
        for name, role, scope in (
            ("alice", Role.approver, "default"),
            ("vic", Role.viewer, "default/default"),
            ("root", Role.admin, "*"),
            ("paula", Role.viewer, "acme/paris"),
        ):
            await svc.users.add(name, PASSWORD)
            await svc.users.grant(name, role, Scope.parse(scope))
        await seed(store)
        await store.close()

    asyncio.run(go())


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("browser")
    marker = home / "approved-and-ran"
    script = [
        # session 1: one command that needs approval, then done
        action(action="shell", command=f"touch {marker}"),
        action(action="done", answer="the marker exists", status="success"),
        # session 2: a long read-only command, aborted from the console
        action(action="shell", command="sleep 45"),
        # session 3: hostile goal and hostile command output
        action(action="shell", command=f'echo "{HOSTILE_OUT}"'),
        action(action="done", answer=HOSTILE_OUT, status="success"),
    ]
    books = home / "playbooks"
    books.mkdir(parents=True)
    (books / "gated.yaml").write_text(GATED)
    extra = f"""
[telemetry]
sample_interval_s = 0
[playbooks]
dir = "{books}"
detect_local = false
[playbooks.nodes.here]
kind = "local"
"""
    d = Daemon(home, script, extra)
    (home / "state").mkdir(parents=True, exist_ok=True)
    _users(home)
    d.start(timeout=120)  # a crowded CI machine takes a while to import everything
    yield d, marker
    d.stop()


def _login(page, base: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("#signin")
    page.wait_for_url(re.compile(r".*/console/sessions$"))


def _start(page, goal: str) -> str:  # type: ignore[no-untyped-def]
    page.click("summary")
    page.fill("#new-session input[name=goal]", goal)
    page.click("#new-session button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/sessions/s_[0-9a-f]+$"))
    return page.url.rsplit("/", 1)[1]


def test_console_in_a_browser(daemon, browser, shots) -> None:
    d, marker = daemon
    base = d.url
    approver = browser.new_context(viewport={"width": 1200, "height": 900})
    page = approver.new_page()
    page.goto(base + "/console/sessions")
    page.wait_for_url(re.compile(r".*/console/login.*"))
    shots(page, "01-login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", "wrong password!")
    page.click("#signin")
    assert page.locator(".error").inner_text() == "wrong user name or password"
    _login(page, base, "alice")
    shots(page, "02-sessions")

    # 1. A live session: tokens and the action stream in; the approval waits for alice.
    sid = _start(page, "touch the marker")
    page.wait_for_selector(f"#decide-{sid}-1 button.approve", timeout=30000)
    assert "thinking about shell" in page.locator("#events").inner_text()
    assert f"touch {marker}" in page.locator("#events code.command").first.inner_text()
    assert not marker.exists()
    shots(page, "03-live-approval")

    # A viewer on the same site sees the session but no approve button, and the API says 403.
    viewer = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    vpage = viewer.new_page()
    _login(vpage, base, "vic")
    vpage.goto(f"{base}/console/sessions/{sid}")
    vpage.wait_for_selector(f"#approval-{sid}-1")
    vpage.wait_for_selector("p.waiting")
    assert vpage.locator("button.approve").count() == 0 and vpage.locator("#abort").count() == 0
    shots(vpage, "04-viewer-no-approve")
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', vpage.locator("body").get_attribute("hx-headers")).group(1)
    r = vpage.request.post(
        f"{base}/agent/reply",
        data={"session": sid, "action": 1, "approved": True},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status == 403 and "session.approve needs approver" in r.text()
    tok = httpx.post(f"{base}/auth/login", json={"name": "vic", "password": PASSWORD}).json()["access_token"]
    r = httpx.post(
        f"{base}/agent/reply",
        json={"session": sid, "action": 1, "approved": True},
        headers={"Authorization": f"Bearer {tok}"},
    )
    assert r.status_code == 403
    assert (
        httpx.post(
            f"{base}/agent/abort", json={"session": sid}, headers={"Authorization": f"Bearer {tok}"}
        ).status_code
        == 403
    )

    # alice approves: the command runs and the session finishes, live.
    page.click(f"#decide-{sid}-1 button.approve")
    page.wait_for_selector("text=approved by alice")
    page.wait_for_selector("article.ev.done", timeout=30000)
    assert "the marker exists" in page.locator("article.ev.done").inner_text()
    assert marker.exists()
    page.wait_for_selector("#ended .message")
    page.wait_for_function("document.querySelector('#status').innerText === 'done'")
    assert page.locator("#abort").count() == 0  # the end of the run removes the abort button
    shots(page, "05-approved-and-ran")

    # 2. Abort a running command.
    page.goto(base + "/console/sessions")
    sid2 = _start(page, "wait a while")
    page.wait_for_selector("text=sleep 45", timeout=30000)
    page.on("dialog", lambda dlg: dlg.accept())
    page.click("#abort")
    page.wait_for_selector("article.ev, div.ev.aborted", timeout=30000)
    page.wait_for_selector("div.ev.aborted", timeout=30000)
    shots(page, "06-aborted")
    s2 = httpx.get(f"{base}/agent/sessions/{sid2}", headers={"Authorization": f"Bearer {d.token}"}).json()
    assert s2["status"] == "aborted"

    # 3. Hostile goal and command output are shown as text, never run.
    page.goto(base + "/console/sessions")
    sid3 = _start(page, HOSTILE_GOAL)
    page.wait_for_selector("article.ev.done", timeout=30000)
    assert page.evaluate("window.__xss") is None
    assert page.locator("p.goal").inner_text() == HOSTILE_GOAL
    assert HOSTILE_OUT in page.locator("pre.output").first.inner_text()
    shots(page, "07-hostile-text")
    page.goto(base + "/console/sessions")
    assert page.evaluate("window.__xss") is None and HOSTILE_GOAL in page.locator("table").inner_text()

    # The other pages render (screenshots for the record); the approver has no audit page.
    for name, path in (
        ("08-approvals", "/console/approvals"),
        ("09-kb", "/console/kb"),
        ("10-fleet", "/console/fleet"),
    ):
        page.goto(base + path)
        shots(page, name)
    assert page.locator("text=No nodes yet").count() == 1
    assert page.locator("a[href='/console/audit']").count() == 0
    assert page.goto(base + "/console/audit").status == 403
    admin = browser.new_context().new_page()
    _login(admin, base, "root")
    admin.goto(base + "/console/audit")
    assert "Chain intact" in admin.locator("#verify").inner_text()
    text = admin.locator("table").inner_text()
    assert "approval" in text and "session.abort" in text and "login" in text
    shots(admin, "11-audit")
    for ctx in (approver, viewer, admin.context):
        ctx.close()
    assert sid3


def test_fleet_pages_in_a_browser(daemon, browser, shots) -> None:
    d, _marker = daemon
    base = d.url
    admin_h = {"Authorization": f"Bearer {d.token}"}
    r = httpx.post(
        f"{base}/playbooks/gated-probe/run", json={"context": {"summary": "browser"}}, headers=admin_h
    )
    assert r.status_code == 201, r.text
    pb_sid = r.json()["session"]
    viewer = browser.new_context(viewport={"width": 1200, "height": 900})
    page = viewer.new_page()
    _login(page, base, "paula")  # viewer on acme/paris
    page.goto(base + "/console/fleet")
    assert page.locator("#node-web-01").count() == 1 and page.locator("#node-here").count() == 1
    assert page.locator("#node-db-02").count() == 0  # another site's node is not listed
    assert "2 open alerts" in page.locator("#fleet-totals").inner_text()
    assert page.locator("h2", has_text="acme / paris / front").count() == 1
    shots(page, "12-fleet")
    page.click("#node-web-01 a")
    page.wait_for_url(re.compile(r".*/console/fleet/web-01$"))
    assert "<script>" in page.locator("#panel-facts").inner_text()  # shown as text
    shots(page, "13-node-facts")
    for tab, check in (
        ("metrics", "svg.spark polyline"),
        ("sessions", "#panel-sessions td a"),
        ("alerts", "tr.alert"),
        ("kb", "ul.kb-used li"),
    ):
        page.click(f"#tab-{tab}")
        page.wait_for_url(re.compile(rf".*\?tab={tab}$"))
        assert page.locator(check).count() >= 1, tab
        assert page.evaluate("window.__xss") is None, tab
        shots(page, f"14-node-{tab}")
    assert page.goto(base + "/console/fleet/db-02").status == 403
    # The playbook run waits for an admin: the viewer sees it, without buttons; the admin has them.
    page.goto(base + "/console/playbooks")
    page.wait_for_selector(f"#run-{pb_sid}")
    assert "waits for an admin" in page.locator(f"#run-{pb_sid}").inner_text()
    assert page.locator(f"#run-{pb_sid} button.approve").count() == 0
    shots(page, "15-playbooks-viewer")
    admin = browser.new_context(viewport={"width": 390, "height": 844}).new_page()  # a phone
    _login(admin, base, "root")
    admin.goto(base + "/console/fleet")
    assert admin.locator("#node-db-02").count() == 1
    shots(admin, "16-fleet-admin-phone")
    admin.goto(base + "/console/playbooks")
    admin.click(f"#run-{pb_sid} button.approve")
    admin.wait_for_selector("text=approved by root")
    shots(admin, "17-playbook-approved")
    for _ in range(200):
        if httpx.get(f"{base}/agent/sessions/{pb_sid}", headers=admin_h).json()["status"] == "done":
            break
        time.sleep(0.1)
    assert httpx.get(f"{base}/agent/sessions/{pb_sid}", headers=admin_h).json()["status"] == "done"
    for ctx in (viewer, admin.context):
        ctx.close()
