"""Console routes (filled in below)."""

from __future__ import annotations

from typing import Any


def mount(app: Any, settings: Any) -> None:
    """Add the console's routes."""
