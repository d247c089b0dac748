"""Errors of the session runner."""

from __future__ import annotations


class RunnerError(Exception):
    """A request the runner cannot honour; ``status`` is the HTTP status the daemon answers with."""

    def __init__(self, message: str, status: int = 400, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason  # for a node that cannot be had: unknown | offline | unreachable | unsupported
