"""One-hop appends for a SQLite store: the event writer's transactions on a thread of their own.

Through SQLAlchemy's async engine every step of a transaction (check-out, BEGIN, each statement,
COMMIT, the pool's reset) is its own hop to aiosqlite's thread and back: ~16 hops an iteration of
the agent loop, a thread wake-up and an event-loop wake-up each (``bench/bench_agent.py``: ~3 ms a
commit on the loaded build machine). Here the whole transaction is one function run on one thread
with its own connection: one hop. Same file, same pragmas (WAL, ``synchronous=NORMAL``, busy
timeout), same SQLAlchemy statements and exception classes, so durability and the writer's error
handling (disk full, integrity errors) are unchanged. PostgreSQL keeps the async engine.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import SingletonThreadPool

from fazai.store import db

T = TypeVar("T")


class SQLiteAppender:
    """A synchronous engine on the store's SQLite file, used from one worker thread only."""

    def __init__(self, path: Path) -> None:
        # One connection, made and used on the worker thread (SingletonThreadPool: one per thread).
        self._engine: Engine = sqlalchemy.create_engine(
            f"sqlite:///{path}", connect_args={"timeout": 10}, poolclass=SingletonThreadPool
        )
        event.listen(self._engine, "connect", db.sqlite_pragmas)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fazai-store-append")

    async def transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction on the worker thread (committed unless it raises)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(self._run, fn))

    def _run(self, fn: Callable[[Connection], Any]) -> Any:
        with self._engine.begin() as conn:
            return fn(conn)

    async def close(self) -> None:
        """Close the connection (on its own thread) and stop the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._engine.dispose)
        self._pool.shutdown(wait=True)
