"""agent routes: which replica holds each node's agent connection, and who dispatched each action

Several fazaid replicas share one PostgreSQL (docs/scale.md). ``agent_routes`` says which replica
holds a node's live agent connection (written on attach, removed on detach, overwritten on
reattach); a row of a replica whose heartbeat is stale is ignored. ``agent_dispatch`` has one row per
``(node, action_id)``, written by the replica that took the submission before the command is sent
anywhere: the replica that ends up holding the agent (after a failover too) knows whom to tell.

Revision ID: 0006_agent_routes
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_agent_routes"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_routes",
        sa.Column("node", sa.String(128), primary_key=True),
        sa.Column("replica", sa.String(128), nullable=False),
        sa.Column("connected_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_agent_routes_replica", "agent_routes", ["replica"])
    op.create_table(
        "agent_dispatch",
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("action_id", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("node", "action_id", name="pk_agent_dispatch"),
    )
    op.create_index("ix_agent_dispatch_action", "agent_dispatch", ["action_id"], unique=True)


def downgrade() -> None:
    op.drop_table("agent_dispatch")
    op.drop_table("agent_routes")
