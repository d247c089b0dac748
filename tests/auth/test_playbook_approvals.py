"""A playbook step's approver role is enforced: viewer/operator/approver/admin × own/other site, with
real users, real playbook runs in the real app, over the API and the console.

The expected outcomes are written out here (not read from the policy): on the playbook's own site a
step naming ``approver`` may be answered by approver and admin, one naming ``admin`` by admin only;
on another site by nobody of these users (their grants are on OWN only).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_asyncio
from app_env import OTHER, OWN, ROLES, open_env

from fazai.web.render import dom_id

ALLOWED = {  # (role the step names, where the run is) -> users that may answer
    ("approver", "own"): {"approver", "admin"},
    ("admin", "own"): {"admin"},
    ("approver", "other"): set(),
    ("admin", "other"): set(),
}


def _book(role: str, site: str) -> str:
    name = f"needs-{role}-{site.replace('/', '-')}"
    return f"""
name: {name}
site: {site}
trigger: {{alert: {{signature_id: 999}}}}
approvals: {{read_only: {role}, changes_state: {role}, destructive: {role}}}
steps:
  - id: probe
    shell: {{command: "true", targets: [here]}}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory):
    home = Path(tmp_path_factory.mktemp("pbroles"))
    books = home / "playbooks"
    books.mkdir(parents=True)
    for role in ("approver", "admin"):
        for site in (OWN, OTHER):
            (books / f"{role}-{site.replace('/', '-')}.yaml").write_text(_book(role, site))
    extra = f"""
[telemetry]
sample_interval_s = 0
[playbooks]
dir = "{books}"
detect_local = false
[playbooks.nodes.here]
kind = "local"
"""
    async with open_env(home, extra=extra) as e:
        yield e


async def _start(env, role: str, where: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    site = OWN if where == "own" else OTHER
    name = f"needs-{role}-{site.replace('/', '-')}"
    async with env.admin() as c:
        r = await c.post(f"/playbooks/{name}/run", json={"context": {"summary": "role matrix"}})
        assert r.status_code == 201, r.text
        sid = r.json()["session"]
        for _ in range(500):
            waiting = (await c.get(f"/agent/sessions/{sid}")).json().get("waiting_for") or []
            if waiting:
                return sid, str(waiting[0]["action"])
            await asyncio.sleep(0.02)
    raise AssertionError(f"{name}: no approval asked")


async def _status(env, sid: str) -> str:  # type: ignore[no-untyped-def]
    async with env.admin() as c:
        for _ in range(500):
            st = (await c.get(f"/agent/sessions/{sid}")).json()["status"]
            if st not in ("created", "running"):
                return st
            await asyncio.sleep(0.02)
    raise AssertionError("the run did not end")


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("role", "where"), list(ALLOWED))
async def test_approver_role_matrix(env, role: str, where: str) -> None:
    allowed = ALLOWED[(role, where)]
    site = OWN if where == "own" else OTHER
    sid, aid = await _start(env, role, where)
    # Lowest role first: every denial leaves the approval pending for the next user.
    for who in [*ROLES, "nobody"]:
        if who in allowed:
            continue
        user = "nobody" if who == "nobody" else f"r-{who}"
        async with env.client(env.tokens[user], addr="10.7.7.7") as c:
            r = await c.post("/agent/reply", json={"session": sid, "action": aid, "approved": True})
            assert r.status_code == 403, (who, r.status_code, r.text)
            assert f"session.approve needs {role}" in r.text and site in r.text, r.text
            if where == "own" and who in ("viewer", "operator", "approver"):
                # The console's view of the same approval: no buttons, and the request refused.
                page = await c.get("/console/approvals")
                assert page.status_code == 200 and f"pending-{sid}-{dom_id(aid)}" in page.text
                decide = f"decide-{sid}-{dom_id(aid)}"
                assert decide not in page.text and f"waiting for an {role}" in page.text
                runs = await c.get("/console/playbooks")
                assert f"run-{sid}" in runs.text and f"waits for an {role}" in runs.text
                assert decide not in runs.text
                r = await c.post(f"/console/sessions/{sid}/reply", data={"action": aid, "approved": "true"})
                assert r.status_code == 403 and role in r.text
        recs = await env.access.audit.recent(5, actor=user, action="session.approve")
        assert recs and recs[0].decision == "deny" and recs[0].target == f"{sid}#{aid}"
        assert f"needs {role}" in recs[0].detail["reason"]
    async with env.admin() as c:
        assert (await c.get(f"/agent/sessions/{sid}")).json()["status"] == "running"  # still waiting
    if not allowed:
        async with env.admin() as c:  # clean up (the bootstrap admin on '*' may)
            r = await c.post("/agent/reply", json={"session": sid, "action": aid, "approved": False})
            assert r.status_code == 200, r.text
        assert await _status(env, sid) == "failed"
        return
    # Each allowed user approves a run of its own, through the console's button for the first.
    for n, who in enumerate(sorted(allowed, key=ROLES.index)):
        if n:
            sid, aid = await _start(env, role, where)
        async with env.client(env.tokens[f"r-{who}"]) as c:
            page = await c.get("/console/approvals")
            assert f"decide-{sid}-{dom_id(aid)}" in page.text, who
            runs = await c.get("/console/playbooks")
            assert f"decide-{sid}-{dom_id(aid)}" in runs.text, who
            r = await c.post("/agent/reply", json={"session": sid, "action": aid, "approved": True})
            assert r.status_code == 200, (who, r.text)
        assert await _status(env, sid) == "done", who
        recs = await env.access.audit.recent(5, actor=f"r-{who}", action="approval")
        assert recs[0].decision == "allow" and recs[0].detail.get("role") == role


@pytest.mark.asyncio(loop_scope="module")
async def test_agent_approvals_keep_the_plain_rule(env) -> None:
    """No role named (an agent's own approval): session.approve (approver) is enough, as before; an
    unknown name (an old run's) fails closed to admin."""
    from fazai.auth import Role, Scope, approval_role, authorize

    user = await env.access.auth.principal(env.tokens["r-approver"])
    assert authorize(user, "session.approve", Scope.parse(OWN)).allowed
    assert not authorize(user, "session.approve", Scope.parse(OWN), at_least=Role.admin).allowed
    assert approval_role(None) is None and approval_role("secops") is Role.admin


@pytest.mark.asyncio(loop_scope="module")
async def test_a_reply_for_another_replica_is_authorised_before_it_is_forwarded(env) -> None:
    """A session another replica runs (here: stored, not running in this process): the role comes
    from the stored log, and only an allowed reply is handed on (tests/scale runs the real relay)."""
    from fazai.protocol import Event

    m = env.app.state.manager
    sid = env.sessions["own"]
    data = {"action": "probe#1", "summary": "true [on here]", "risk": "read_only", "role": "admin"}
    seq = await m.store.last_seq(sid) + 1
    ev = Event(session=sid, seq=seq, kind="approval_required", data=data)  # type: ignore[arg-type]
    await m.store.append_events([ev])
    sent: list[dict] = []

    async def forward(session_id: str, body: dict) -> dict:  # the other replica's answer
        sent.append(body)
        return {"accepted": True, "replica": "b"}

    real, m.forward = m.forward, forward
    try:
        body = {"session": sid, "action": "probe#1", "approved": True}
        async with env.client(env.tokens["r-approver"]) as c:
            r = await c.post("/agent/reply", json=body)
        assert r.status_code == 403 and "needs admin" in r.text and sent == []
        async with env.client(env.tokens["r-admin"]) as c:
            r = await c.post("/agent/reply", json=body)
        assert r.status_code == 200 and r.json()["replica"] == "b" and len(sent) == 1
    finally:
        m.forward = real
    rec = (await env.access.audit.recent(1, actor="r-admin", action="approval"))[0]
    assert rec.detail == {"role": "admin", "replica": "b"} and rec.target == f"{sid}#probe#1"


@pytest.mark.asyncio(loop_scope="module")
async def test_starting_a_playbook_by_hand_needs_run_rights_on_its_site(env) -> None:
    body = {"context": {"summary": "by hand"}}
    async with env.client(env.tokens["r-operator"]) as c:
        other = await c.post("/playbooks/needs-approver-globex-berlin/run", json=body)
        assert other.status_code == 403 and f"session.run needs operator on {OTHER}" in other.text
        own = await c.post("/playbooks/needs-approver-acme-paris/run", json=body)
        assert own.status_code == 201, own.text
    async with env.client(env.tokens["r-viewer"]) as c:
        assert (await c.post("/playbooks/needs-approver-acme-paris/run", json=body)).status_code == 403
    sid = own.json()["session"]
    async with env.admin() as c:
        for _ in range(500):
            if (await c.get(f"/agent/sessions/{sid}")).json().get("waiting_for"):
                break
            await asyncio.sleep(0.02)
        await c.post("/agent/abort", json={"session": sid})
