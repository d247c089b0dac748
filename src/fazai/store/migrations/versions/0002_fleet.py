"""fleet: CA state, bootstrap tokens, enrollments, agents, certificates/revocations, actions

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "fleet_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("site", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("used_at", sa.String(32), nullable=True),
        sa.Column("used_by", sa.String(64), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_table(
        "fleet_enrollments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("site", sa.String(128), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("csr", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=True),
        sa.Column("facts", _JSON, nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("decided_at", sa.String(32), nullable=True),
        sa.Column("cert_serial", sa.String(64), nullable=True),
    )
    op.create_index("ix_fleet_enrollments_status", "fleet_enrollments", ["status"])
    op.create_table(
        "fleet_agents",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("site", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("enrolled_at", sa.String(32), nullable=False),
        sa.Column("last_seen", sa.String(32), nullable=True),
        sa.Column("hello", _JSON, nullable=True),
    )
    op.create_table(
        "fleet_certs",
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("not_before", sa.String(32), nullable=False),
        sa.Column("not_after", sa.String(32), nullable=False),
        sa.Column("issued_at", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_index("ix_fleet_certs_node", "fleet_certs", ["node"])
    op.create_index("ix_fleet_certs_revoked_at", "fleet_certs", ["revoked_at"])
    op.create_table(
        "fleet_actions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("session", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("spec", _JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("result", _JSON, nullable=True),
    )
    op.create_index("ix_fleet_actions_node_state", "fleet_actions", ["node", "state"])


def downgrade() -> None:
    op.drop_index("ix_fleet_actions_node_state", table_name="fleet_actions")
    op.drop_table("fleet_actions")
    op.drop_index("ix_fleet_certs_revoked_at", table_name="fleet_certs")
    op.drop_index("ix_fleet_certs_node", table_name="fleet_certs")
    op.drop_table("fleet_certs")
    op.drop_table("fleet_agents")
    op.drop_index("ix_fleet_enrollments_status", table_name="fleet_enrollments")
    op.drop_table("fleet_enrollments")
    op.drop_table("fleet_tokens")
