"""replicas: which fazaid runs a session, and each replica's heartbeat

Several fazaid replicas share one PostgreSQL (docs/scale.md): a replica that starts marks only its
own leftover ``running`` sessions (and those of replicas whose heartbeat stopped) as interrupted,
never the live runs of the others.

Revision ID: 0002_scale
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_scale"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("replica", sa.String(128), nullable=True))
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("heartbeat_at", sa.String(32), nullable=False),
        sa.Column("url", sa.String(300), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("replicas")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("replica")
