"""Light types shared by the CLI commands and the clients (no heavy imports here)."""

from __future__ import annotations

from dataclasses import dataclass


class ClientError(Exception):
    """The daemon (or the embedded runner) refused or failed; the message says what to do."""


@dataclass(frozen=True, slots=True)
class End:
    """The run finished with ``status``."""

    session: str
    status: str | None
    last_seq: int


@dataclass(frozen=True, slots=True)
class Lagged:
    """The daemon dropped this follower after ``last_seq`` (it resumes from there).

    ``lost``: the connection broke (the daemon died or the network failed), rather than the daemon
    dropping a slow follower.
    """

    session: str
    last_seq: int
    lost: bool = False
