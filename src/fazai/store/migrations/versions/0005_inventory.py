"""inventory: organisation → site → group → node, with tags, labels, transport, liveness and facts

Revision ID: 0005
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "inv_orgs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "inv_sites",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("org_id", _ID, sa.ForeignKey("inv_orgs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("org_id", "name", name="uq_inv_sites_org_name"),
    )
    op.create_table(
        "inv_groups",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("site_id", _ID, sa.ForeignKey("inv_sites.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("site_id", "name", name="uq_inv_groups_site_name"),
    )
    op.create_table(
        "inv_nodes",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(253), nullable=False, unique=True),
        sa.Column("org_id", _ID, sa.ForeignKey("inv_orgs.id"), nullable=False),
        sa.Column("site_id", _ID, sa.ForeignKey("inv_sites.id"), nullable=True),
        sa.Column("group_id", _ID, sa.ForeignKey("inv_groups.id"), nullable=True),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("address", sa.String(255), nullable=True),
        sa.Column("port", sa.Integer, nullable=True),
        sa.Column("ssh_user", sa.String(64), nullable=True),
        sa.Column("tags", _JSON, nullable=False),
        sa.Column("labels", _JSON, nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("last_heartbeat", sa.String(32), nullable=True),
        sa.Column("facts", _JSON, nullable=True),
        sa.Column("facts_at", sa.String(32), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_inv_nodes_site", "inv_nodes", ["site_id"])


def downgrade() -> None:
    op.drop_index("ix_inv_nodes_site", table_name="inv_nodes")
    op.drop_table("inv_nodes")
    op.drop_table("inv_groups")
    op.drop_table("inv_sites")
    op.drop_table("inv_orgs")
