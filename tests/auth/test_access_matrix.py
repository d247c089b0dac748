"""Every role × every endpoint × own/other site: each allow and each denial, through the real app.

The expected minimum roles are written out here, independently of ``fazai.auth.policy.ACTIONS``, so a
wrong entry in the policy table fails this test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio
from app_env import OTHER, OWN, ROLES, open_env

ORDER = {"viewer": 1, "operator": 2, "approver": 3, "admin": 4}

SITE, ANY, INSTALL = "site", "any", "install"  # on the resource's site / any grant / a grant on '*'

# name: (method, path, body, least role, where the role must be held)
ENDPOINTS: dict[str, tuple[str, str, dict | None, str, str]] = {
    "get_session": ("GET", "/agent/sessions/{sid}", None, "viewer", SITE),
    "events_sse": ("GET", "/agent/sessions/{sid}/events?follow=false", None, "viewer", SITE),
    "create": ("POST", "/agent/sessions", {"goal": "g", "site": "{site}"}, "operator", SITE),
    "generate": ("POST", "/agent/generate", {"goal": "g", "site": "{site}"}, "operator", SITE),
    "continue": ("POST", "/agent/generate", {"session": "{sid}", "goal": "again"}, "operator", SITE),
    "generate_yes": (
        "POST",
        "/agent/generate",
        {"goal": "g", "site": "{site}", "yes": True},
        "approver",
        SITE,
    ),
    "abort": ("POST", "/agent/abort", {"session": "{sid}"}, "operator", SITE),
    "approve": (
        "POST",
        "/agent/reply",
        {"session": "{sid}", "action": 1, "approved": True},
        "approver",
        SITE,
    ),
    "deny": ("POST", "/agent/reply", {"session": "{sid}", "action": 1, "approved": False}, "approver", SITE),
    "answer": ("POST", "/agent/reply", {"session": "{sid}", "action": 1, "answer": "hi"}, "operator", SITE),
    "metrics": ("GET", "/metrics", None, "viewer", ANY),
    "console_session": ("GET", "/console/sessions/{sid}", None, "viewer", SITE),
    "console_stream": ("GET", "/console/sessions/{sid}/stream", None, "viewer", SITE),
    "console_kb": ("GET", "/console/kb", None, "viewer", ANY),
    "console_audit": ("GET", "/console/audit", None, "admin", INSTALL),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory):
    async with open_env(Path(tmp_path_factory.mktemp("matrix"))) as e:
        yield e


def _fill(value, sid: str, site: str):  # type: ignore[no-untyped-def]
    if isinstance(value, dict):
        return {k: _fill(v, sid, site) for k, v in value.items()}
    if isinstance(value, str):
        return value.replace("{sid}", sid).replace("{site}", site)
    return value


CASES = [
    (who, ep, where)
    for who in [*ROLES, "nobody"]
    for ep in ENDPOINTS
    for where in ("own", "other")
    if ENDPOINTS[ep][4] == SITE or where == "own"
]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("who", "endpoint", "where"), CASES)
async def test_matrix(env, who: str, endpoint: str, where: str) -> None:
    method, path, body, least, reach = ENDPOINTS[endpoint]
    sid = env.sessions[where]
    site = OWN if where == "own" else OTHER
    name = "nobody" if who == "nobody" else f"r-{who}"
    # Every matrix user's grant is on OWN (a site): installation-wide actions are denied to all of them.
    allowed = (
        who != "nobody"
        and ORDER[who] >= ORDER[least]
        and reach != INSTALL
        and (where == "own" or reach == ANY)
    )
    async with env.client(env.tokens[name]) as c:
        r = await c.request(method, _fill(path, sid, site), json=_fill(body, sid, site))
    if allowed:
        assert r.status_code not in (401, 403), (who, endpoint, where, r.status_code, r.text[:300])
    else:
        assert r.status_code == 403, (who, endpoint, where, r.status_code, r.text[:300])
        # The message names the first requirement that failed (generate_yes needs operator first).
        assert "forbidden" in r.text and (least in r.text or endpoint == "generate_yes")


@pytest.mark.asyncio(loop_scope="module")
async def test_installation_wide_pages_need_a_grant_on_star(env) -> None:
    from fazai.auth import Role, Scope

    users = env.access.auth.users
    await users.add("org-admin", "correct horse battery")
    await users.grant("org-admin", Role.admin, Scope.parse("acme"))
    await users.add("global-admin", "correct horse battery")
    await users.grant("global-admin", Role.admin, Scope.parse("*"))
    for name, code in (("org-admin", 403), ("global-admin", 200)):
        async with env.client() as c:
            tok = (
                await c.post("/auth/login", json={"name": name, "password": "correct horse battery"})
            ).json()
        async with env.client(tok["access_token"]) as c:
            assert (await c.get("/console/audit")).status_code == code, name
    async with env.admin() as c:  # the bootstrap token is an admin on '*'
        assert (await c.get("/console/audit")).status_code == 200


@pytest.mark.asyncio(loop_scope="module")
async def test_lists_show_only_readable_sessions(env) -> None:
    async with env.client(env.tokens["r-viewer"]) as c:
        ids = {s["id"] for s in (await c.get("/agent/sessions")).json()}
    assert env.sessions["own"] in ids and env.sessions["other"] not in ids
    async with env.client(env.tokens["nobody"]) as c:
        assert (await c.get("/agent/sessions")).json() == []
    async with env.admin() as c:
        ids = {s["id"] for s in (await c.get("/agent/sessions")).json()}
    assert {env.sessions["own"], env.sessions["other"]} <= ids


@pytest.mark.asyncio(loop_scope="module")
async def test_unauthenticated_and_bad_credentials_get_401(env) -> None:
    for bearer in (None, "not-a-token", "fzt_0123456789abcdef_nope", "a.b.c"):
        async with env.client(bearer) as c:
            r = await c.get(f"/agent/sessions/{env.sessions['own']}")
            assert r.status_code == 401, bearer
            assert r.headers["www-authenticate"] == "Bearer"
            r = await c.get(f"/agent/sessions/{env.sessions['own']}/events")
            assert r.status_code == 401
    async with env.client() as c:
        assert (await c.get("/healthz")).status_code == 200  # health stays open


@pytest.mark.asyncio(loop_scope="module")
async def test_state_changing_denials_are_audited(env) -> None:
    async with env.client(env.tokens["r-viewer"], addr="10.9.9.9") as c:
        r = await c.post("/agent/abort", json={"session": env.sessions["own"]})
    assert r.status_code == 403
    recs = await env.access.audit.recent(20, actor="r-viewer", action="session.abort")
    assert recs and recs[0].decision == "deny" and recs[0].source == "10.9.9.9"
    assert recs[0].target == env.sessions["own"] and "operator" in recs[0].detail["reason"]


# Reachable without a credential, by design: health, signing in, and the console's static files.
PUBLIC = {
    "/healthz",
    "/auth/login",
    "/auth/refresh",
    "/console/login",
    "/console/refresh",
    "/console",
    "/console/",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/openapi.json",
}


@pytest.mark.asyncio(loop_scope="module")
async def test_every_route_needs_a_credential(env) -> None:
    """No route but the public ones answers an anonymous caller (a new route without a check fails)."""
    checked = 0
    # The OpenAPI description lists every route, included routers too.
    for path_t, ops in env.app.openapi()["paths"].items():
        if path_t in PUBLIC:
            continue
        path = path_t
        for name in ("session_id", "sid"):
            path = path.replace("{" + name + "}", env.sessions["own"])
        path = path.replace("{item_id}", "k1").replace("{node_id}", "n1")
        for method in ops:
            async with env.client() as c:
                r = await c.request(method.upper(), path, json={})
            if path.startswith("/console"):
                assert r.status_code == 303 and "/console/login" in r.headers["location"], (method, path)
            else:
                assert r.status_code == 401, (method, path, r.status_code)
            checked += 1
    assert checked >= 20
