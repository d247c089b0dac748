"""The web console served by fazaid (server-rendered Jinja2 + htmx + SSE), and request access control."""

from __future__ import annotations

from typing import Any


def mount_console(app: Any, settings: Any) -> None:
    """Add the console's routes and static files to the daemon's app."""
    from fazai.web.console import mount

    mount(app, settings)
