"""Tables of the session store: sessions and their ordered event logs.

Plain SQLAlchemy Core tables; Alembic migrations in ``migrations/`` create them (never ``create_all``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")

SESSION_STATUSES = ("created", "running", "done", "unverified", "failed", "interrupted", "aborted")

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("goal", Text, nullable=False),
    Column("mode", String(16), nullable=False, default="agent"),
    Column("status", String(16), nullable=False, default="running"),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("model", String(200), nullable=True),
    Column("summary", Text, nullable=True),
    # The replica running (or that last ran) the session; NULL before 0002_scale or in embedded runs.
    Column("replica", String(128), nullable=True),
)

replicas = Table(
    "replicas",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("started_at", String(32), nullable=False),
    Column("heartbeat_at", String(32), nullable=False),
    Column("url", String(300), nullable=True),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("session", String(64), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("ts", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("data", JSONType, nullable=False),
    UniqueConstraint("session", "seq", name="uq_events_session_seq"),
)

Index("ix_sessions_updated_at", sessions.c.updated_at)
