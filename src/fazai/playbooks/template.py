"""``{dotted.name}`` placeholders in playbook strings, filled from the run's context.

``{alert.src_ip}``, ``{metric.value}``, ``{steps.investigate.answer}``, ``{playbook}``, ``{summary}``.
``{{`` and ``}}`` are literal braces. An unknown name is an error naming it (never an empty string).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\}")


class TemplateError(ValueError):
    """A placeholder names nothing in the context."""


def lookup(ctx: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``dotted`` in nested mappings; TemplateError when absent."""
    cur: Any = ctx
    for part in dotted.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            raise TemplateError(f"{{{dotted}}} names nothing in this run (known: {', '.join(sorted(ctx))})")
    return cur


def render(text: str, ctx: Mapping[str, Any]) -> str:
    """``text`` with its placeholders filled."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        value = lookup(ctx, m.group(1))
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(sub, text)


def placeholders(text: str) -> list[str]:
    """The dotted names ``text`` refers to."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1)]
