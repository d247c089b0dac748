"""Alembic environment: runs on a connection handed over by :func:`fazai.store.db.migrate`."""

from __future__ import annotations

from alembic import context

from fazai.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through the alembic CLI without a URL
    raise RuntimeError("run migrations through fazai.store.db.migrate(), which passes a connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
