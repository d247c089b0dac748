"""The real fazaid app in-process (lifespan, SQLite store, scripted provider) with users of every role."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from daemon_harness import action, write_config
from fazai.auth import Role, Scope
from fazai.config import load_settings
from fazai.server.app import create_app

PASSWORD = "correct horse battery"
OWN = "acme/paris"
OTHER = "globex/berlin"
ROLES = ["viewer", "operator", "approver", "admin"]


@dataclass
class AppEnv:
    app: object
    settings: object
    bootstrap: str
    tokens: dict[str, str] = field(default_factory=dict)  # user name -> access JWT
    sessions: dict[str, str] = field(default_factory=dict)  # "own"/"other" -> session id

    def client(self, bearer: str | None = None, *, addr: str = "10.0.0.5") -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        transport = httpx.ASGITransport(app=self.app, client=(addr, 40000))  # type: ignore[arg-type]
        return httpx.AsyncClient(transport=transport, base_url="http://fazaid", headers=headers, timeout=30)

    def admin(self) -> httpx.AsyncClient:
        return self.client(self.bootstrap)

    @property
    def access(self):  # type: ignore[no-untyped-def]
        return self.app.state.access  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def open_env(home: Path, script: list[str] | None = None, extra: str = "") -> AsyncIterator[AppEnv]:
    """The app with users r-<role> (that role on OWN), 'nobody' (no role), and one session per site
    (``extra``: more settings, TOML)."""
    script = script or [action(action="done", answer="ok", status="success")] * 50
    cfg = write_config(home, script, extra)
    settings = load_settings(cfg)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        env = AppEnv(app, settings, settings.daemon_token_file.read_text().strip())
        users = env.access.auth.users
        for role in ROLES:
            await users.add(f"r-{role}", PASSWORD)
            await users.grant(f"r-{role}", Role.parse(role), Scope.parse(OWN))
        await users.add("nobody", PASSWORD)
        async with env.client() as c:
            for name in [*(f"r-{r}" for r in ROLES), "nobody"]:
                r = await c.post("/auth/login", json={"name": name, "password": PASSWORD})
                assert r.status_code == 200, r.text
                env.tokens[name] = r.json()["access_token"]
        async with env.admin() as c:
            for key, site in (("own", OWN), ("other", OTHER)):
                r = await c.post("/agent/sessions", json={"goal": f"goal on {site}", "site": site})
                assert r.status_code == 201, r.text
                env.sessions[key] = r.json()["id"]
        yield env
