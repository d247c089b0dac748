"""Session store: sessions and their ordered event logs (SQLAlchemy 2 async + Alembic).

SQLite (WAL) at ``<state_dir>/fazai.db`` by default, PostgreSQL by ``[daemon] database_url``.
"""

from fazai.store.db import default_database_url, normalize_url
from fazai.store.store import SchemaError, SessionRecord, Store, StoreError, new_session_id
from fazai.store.writer import EventWriter

__all__ = [
    "EventWriter",
    "SchemaError",
    "SessionRecord",
    "Store",
    "StoreError",
    "default_database_url",
    "new_session_id",
    "normalize_url",
]
