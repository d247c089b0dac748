"""Riding out a database outage: which errors are worth retrying, and a backoff loop for them.

A PostgreSQL restart or a network cut must not end a session: its events wait in memory and are
written once the server answers again. An error the database gave for the statement itself (a
duplicate ``seq``, a bad value) is not retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

log = structlog.get_logger("fazai.store")

T = TypeVar("T")

# asyncpg's own connection errors (when SQLAlchemy passes them through unwrapped).
_CONNECTION_ERROR_NAMES = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "PostgresConnectionError",
        "InterfaceError",
        "AdminShutdownError",
        "CrashShutdownError",
        "TooManyConnectionsError",
    }
)


def is_transient(exc: BaseException) -> bool:
    """True for a lost or refused connection (retry later), False for an error of the statement."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, IntegrityError):
            return False
        if isinstance(cur, DBAPIError) and cur.connection_invalidated:
            return True
        if isinstance(cur, (OperationalError, InterfaceError, OSError, TimeoutError)):
            return True
        if type(cur).__name__ in _CONNECTION_ERROR_NAMES:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


class Backoff:
    """Exponential waits: 0.1 s, 0.2 s, … up to ``max_s``."""

    def __init__(self, first_s: float = 0.1, max_s: float = 5.0):
        self.first_s = first_s
        self.max_s = max_s
        self.attempt = 0

    def next(self) -> float:
        """The wait before the next attempt."""
        delay = min(self.max_s, self.first_s * (2**self.attempt))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start over after a success."""
        self.attempt = 0


async def retrying(
    op: Callable[[], Awaitable[T]], *, what: str, max_s: float = 5.0, give_up_s: float | None = None
) -> T:
    """Run ``op`` until it succeeds, waiting with backoff after each transient failure.

    ``give_up_s``: stop retrying after this long and raise the last error (``None``: never).
    """
    backoff = Backoff(max_s=max_s)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while True:
        try:
            result = await op()
        except Exception as e:
            if not is_transient(e) or (give_up_s is not None and loop.time() - t0 > give_up_s):
                raise
            delay = backoff.next()
            log.warning(
                "store_unreachable",
                what=what,
                error=str(e).splitlines()[0][:300] if str(e) else type(e).__name__,
                retry_in_s=round(delay, 2),
                attempt=backoff.attempt,
                message="the database does not answer; nothing is lost, retrying until it is back",
            )
            await asyncio.sleep(delay)
            continue
        if backoff.attempt:
            log.info("store_back", what=what, after_attempts=backoff.attempt)
        return result
