"""Plain JSON calls to ``fazaid`` for the command groups that need more than the session API."""

from __future__ import annotations

import os
from typing import Any

import httpx

from fazai.cli.client import daemon_url
from fazai.cli.client_types import ClientError
from fazai.config import Settings
from fazai.sessions.token import read_token


async def call(settings: Settings, method: str, path: str, **kw: Any) -> Any:
    """One request; the decoded JSON answer. :class:`ClientError` says what went wrong."""
    token = os.environ.get("FAZAI_DAEMON_TOKEN") or read_token(settings.daemon_token_file)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = daemon_url(settings)
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as c:
            r = await c.request(method, path, **kw)
    except httpx.HTTPError as e:
        raise ClientError(f"cannot reach fazaid at {url} ({e}); start it with `fazaid`") from e
    if r.status_code == 401:
        raise ClientError("the daemon refused the request (401): run as root or set FAZAI_DAEMON_TOKEN")
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text
        raise ClientError(f"daemon: {detail} (HTTP {r.status_code})")
    return r.json()
