"""Engine creation and automatic migrations for the session store.

SQLite (WAL) in the state directory by default; PostgreSQL (or any async SQLAlchemy URL) by
``[daemon] database_url``. Plain ``postgresql://`` / ``sqlite://`` URLs get their async driver added.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from fazai.store.files import DIR_MODE, secure_sqlite, sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def default_database_url(state_dir: Path) -> str:
    """``sqlite+aiosqlite:///<state_dir>/fazai.db``."""
    return f"sqlite+aiosqlite:///{Path(state_dir) / 'fazai.db'}"


def normalize_url(url: str) -> str:
    """Add the async driver to plain URLs (``postgresql://`` → ``postgresql+asyncpg://``)."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    """Set the pragmas every FazAI connection to a SQLite store uses."""
    # WAL lets readers (SSE replays, `fazai sessions`) run while the writer commits; NORMAL is
    # durable across process crashes (kill -9), which is what the log needs.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; SQLite files get WAL and a busy timeout, and their folder.

    A SQLite file is created 0600 (its folder 0700 when new) before SQLite opens it, and an existing
    one is checked: the log holds every command's output (see :mod:`fazai.store.files`).
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            if not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
            secure_sqlite(path)
        engine = create_async_engine(url, connect_args={"timeout": 10})
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def _alembic_config(conn: Connection) -> Config:
    # Alembic is imported only to migrate (at a store's open): `fazai sessions` through the daemon
    # never pays for it.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


# pg_advisory_xact_lock key: replicas starting together migrate one after the other.
_MIGRATE_LOCK = 0x46415A4149  # "FAZAI"


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent)."""

    def _upgrade(conn: Connection) -> None:
        # "heads": each feature (fleet, telemetry, auth) adds its tables as its own branch off 0001,
        # so they land independently; the store applies all of them.
        command.upgrade(_alembic_config(conn), "heads")

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK})
        await conn.run_sync(_upgrade)


def code_heads() -> set[str]:
    """The newest revision of each migration branch this FazAI ships."""
    return set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())


async def schema_heads(engine: AsyncEngine) -> set[str]:
    """The revisions the database is at (empty for a database never migrated)."""

    def _current(conn: Connection) -> set[str]:
        return set(MigrationContext.configure(conn).get_current_heads())

    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def unknown_revisions(revisions: set[str]) -> set[str]:
    """Those of ``revisions`` that no migration of this FazAI defines (a newer FazAI wrote them)."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    out = set()
    for rev in revisions:
        try:
            if script.get_revision(rev) is None:
                out.add(rev)
        except Exception:  # alembic raises for a revision it does not know
            out.add(rev)
    return out
