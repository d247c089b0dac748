"""The connector interface: where commands run (pyinfra-style).

A :class:`Target` runs a shell command and streams its output as it arrives, and moves files.
``local`` runs on this machine; ``ssh`` and ``agent`` (later) implement the same protocol, so the
loop never knows which one it is talking to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

Stream = Literal["stdout", "stderr"]

# Called with each piece of output as it arrives; may be a plain function or a coroutine function.
OutputCallback = Callable[[Stream, str], Awaitable[None] | None]


@dataclass(slots=True)
class ExecResult:
    """What a command did. ``stdout``/``stderr`` hold the full output.

    ``exit_code`` is the process's status; a negative value ``-N`` means it was killed by signal ``N``
    (as after a timeout or an abort, which also set ``timed_out`` / ``cancelled``).
    """

    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """True when the command ran to completion with status 0."""
        return self.exit_code == 0 and not self.timed_out and not self.cancelled


class TargetError(Exception):
    """The target could not run the command at all (not a non-zero exit: that is a result)."""


@runtime_checkable
class Target(Protocol):
    """A place where commands run."""

    name: str

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the target enforces it itself)
        on_output: OutputCallback | None = None,
        cancel: asyncio.Event | None = None,
    ) -> ExecResult:
        """Run ``command`` in a non-login bash, streaming output to ``on_output`` as it arrives.

        A ``timeout`` (seconds) or a set ``cancel`` event kills everything the command started.
        """
        ...

    async def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write ``data`` to ``path`` (atomically where the target allows) with permissions ``mode``."""
        ...

    async def get_file(self, path: str) -> bytes:
        """Read the file at ``path``."""
        ...
