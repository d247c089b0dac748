"""The console's templates: Jinja2 with autoescaping on for every template (all output is escaped)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from fazai.protocol import Event

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    # Every template is HTML, including the fragments (names starting with "_"): escape everything.
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def dom_id(value: Any) -> str:
    """``value`` as a piece of an HTML id usable in a CSS selector (htmx targets): characters other
    than letters, digits, ``_`` and ``-`` become ``_<hex>`` (a playbook's action ``probe#1`` →
    ``probe_231``), so distinct values stay distinct."""
    return re.sub(r"[^A-Za-z0-9_-]", lambda m: f"_{ord(m.group()):x}", str(value))


env.filters["domid"] = dom_id


def page(name: str, **ctx: Any) -> str:
    """Render a full page or fragment."""
    return env.get_template(name).render(**ctx)


def event_html(ev: Event, *, pending: bool = False, may_approve: bool = False) -> str:
    """One stored event as an HTML fragment for the live view."""
    return env.get_template("_event.html").render(ev=ev, pending=pending, may_approve=may_approve)
