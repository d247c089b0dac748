"""Sign-in and credentials against the real app: forged, expired and alg=none JWTs, refresh rotation,
API token scope caps, password changes, rate limits, no user enumeration, CSRF on the console."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest
import pytest_asyncio
from app_env import OWN, PASSWORD, open_env

from fazai.auth import Role, Scope
from fazai.auth.jwt_tokens import issue_access


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory):
    async with open_env(Path(tmp_path_factory.mktemp("tokens"))) as e:
        yield e


def _b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _status(env, bearer: str, path: str = "/auth/me") -> int:
    async with env.client(bearer) as c:
        return (await c.get(path)).status_code


async def test_valid_jwt_then_forged_alg_none_and_expired(env) -> None:
    good = env.tokens["r-admin"]
    assert await _status(env, good) == 200
    header, payload, _sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    # alg=none with the same claims, no signature.
    none_tok = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert await _status(env, none_tok) == 401
    # Signed with another key.
    forged = jwt.encode(claims, b"k" * 32, algorithm="HS256")
    assert await _status(env, forged) == 401
    # Right key, but the payload tampered (another user id): the signature no longer matches.
    tampered = f"{header}.{_b64({**claims, 'sub': '1'})}.{_sig}"
    assert await _status(env, tampered) == 401
    # HS512 with the right key is still refused: HS256 only.
    other_alg = jwt.encode(claims, env.access.auth.key, algorithm="HS512")
    assert await _status(env, other_alg) == 401
    # Expired (issued with a negative lifetime).
    u = await env.access.auth.users.get("r-admin")
    expired = issue_access(env.access.auth.key, u.id, u.name, u.token_version, ttl_s=-5)
    async with env.client(expired) as c:
        r = await c.get("/auth/me")
    assert r.status_code == 401 and "expired" in r.text


async def test_refresh_is_single_use_and_password_change_revokes(env) -> None:
    await env.access.auth.users.add("rot", PASSWORD)
    await env.access.auth.users.grant("rot", Role.viewer, Scope.parse(OWN))
    async with env.client() as c:
        pair = (await c.post("/auth/login", json={"name": "rot", "password": PASSWORD})).json()
        r = await c.post("/auth/refresh", json={"refresh": pair["refresh_token"]})
        assert r.status_code == 200
        new = r.json()
        again = await c.post("/auth/refresh", json={"refresh": pair["refresh_token"]})
        assert again.status_code == 401 and "already used" in again.text
    assert await _status(env, new["access_token"]) == 200
    await env.access.auth.users.set_password("rot", "another long password")
    assert await _status(env, new["access_token"]) == 401  # issued before the change
    async with env.client() as c:
        r = await c.post("/auth/refresh", json={"refresh": new["refresh_token"]})
        assert r.status_code == 401


async def test_api_token_is_capped_by_scope_and_revocable(env) -> None:
    svc = env.access.auth
    with pytest.raises(Exception, match="cannot hand out admin"):
        await svc.create_api_token("r-operator", "ci", Role.admin, Scope.parse(OWN))
    token, info = await svc.create_api_token("r-operator", "ci", Role.viewer, Scope.parse(OWN))
    sid = env.sessions["own"]
    async with env.client(token) as c:
        assert (await c.get(f"/agent/sessions/{sid}")).status_code == 200
        # The user may abort on OWN, but this token is only a viewer.
        r = await c.post("/agent/abort", json={"session": sid})
        assert r.status_code == 403 and "ci" in r.text
        assert (await c.get(f"/agent/sessions/{env.sessions['other']}")).status_code == 403
    # Revoking the user's grant shrinks the token too.
    await svc.users.revoke("r-operator", Scope.parse(OWN))
    assert await _status(env, token, f"/agent/sessions/{sid}") == 403
    await svc.users.grant("r-operator", Role.operator, Scope.parse(OWN))
    assert await svc.revoke_api_token(info.id)
    assert await _status(env, token) == 401
    assert await _status(env, token[:-3] + "xyz") == 401


async def test_login_gives_one_answer_and_is_rate_limited(env) -> None:
    async with env.client(addr="10.1.1.1") as c:
        wrong = await c.post("/auth/login", json={"name": "r-viewer", "password": "nope-nope"})
        missing = await c.post("/auth/login", json={"name": "no-such-user", "password": "nope-nope"})
    assert wrong.status_code == missing.status_code == 401
    assert wrong.json() == missing.json() == {"detail": "wrong user name or password"}
    async with env.client(addr="10.2.2.2") as c:
        codes = [
            (await c.post("/auth/login", json={"name": "r-approver", "password": f"bad-{i}"})).status_code
            for i in range(6)
        ]
        assert codes[:5] == [401] * 5 and codes[5] == 429
        # Even the right password waits now (the name is limited)…
        r = await c.post("/auth/login", json={"name": "r-approver", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # …from any address, while other users are unaffected.
    async with env.client(addr="10.3.3.3") as c:
        assert (
            await c.post("/auth/login", json={"name": "r-approver", "password": PASSWORD})
        ).status_code == 429
        assert (
            await c.post("/auth/login", json={"name": "r-admin", "password": PASSWORD})
        ).status_code == 200
    recs = await env.access.audit.recent(50, action="login")
    assert {"ok", "fail", "deny"} <= {r.decision for r in recs}


async def test_console_cookie_needs_csrf_for_state_changes(env) -> None:
    sid = env.sessions["own"]
    async with env.client(addr="10.4.4.4") as c:
        page = await c.get("/console/login")
        csrf = c.cookies.get("fazai_csrf")
        assert csrf and f'value="{csrf}"' in page.text
        # Sign-in without the form's CSRF value is refused.
        r = await c.post("/console/login", data={"name": "r-admin", "password": PASSWORD, "csrf": "x"})
        assert r.status_code == 403
        r = await c.post("/console/login", data={"name": "r-admin", "password": PASSWORD, "csrf": csrf})
        assert r.status_code == 303 and c.cookies.get("fazai_at")
        assert (await c.get("/console/sessions")).status_code == 200
        token = c.cookies.get("fazai_csrf")
        # The cookie alone does not change anything: no token, a wrong one, then the right one.
        assert (await c.post("/agent/abort", json={"session": sid})).status_code == 403
        r = await c.post("/agent/abort", json={"session": sid}, headers={"X-CSRF-Token": token + "x"})
        assert r.status_code == 403 and "CSRF" in r.text
        r = await c.post("/agent/abort", json={"session": sid}, headers={"X-CSRF-Token": token})
        assert r.status_code == 200
        r = await c.post(f"/console/sessions/{sid}/abort", data={"csrf": "forged"})
        assert r.status_code == 403


async def test_console_redirects_to_login_and_refreshes(env) -> None:
    async with env.client() as c:
        r = await c.get("/console/sessions")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
        await c.get("/console/login")
        csrf = c.cookies.get("fazai_csrf")
        await c.post(
            "/console/login",
            data={"name": "r-viewer", "password": PASSWORD, "csrf": csrf, "next": "https://evil.example/"},
        )
        c.cookies.delete("fazai_at")  # as if the 15-minute access token expired
        r = await c.get("/console/sessions")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/refresh")
        r = await c.get(r.headers["location"])
        assert r.status_code == 303 and r.headers["location"] == "/console/sessions"
        assert (await c.get("/console/sessions")).status_code == 200
