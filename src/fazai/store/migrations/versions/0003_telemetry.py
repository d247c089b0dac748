"""telemetry: alerts (deduplicated, with the raw EVE record), rejected EVE lines, metric samples and
rollups, playbook runs

Revision ID: 0003_telemetry
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003_telemetry"
down_revision = "0001"
branch_labels = ("telemetry",)
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(400), nullable=False),
        sa.Column("signature_id", sa.BigInteger, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=True),
        sa.Column("severity", sa.Integer, nullable=True),
        sa.Column("src_ip", sa.String(64), nullable=False),
        sa.Column("dest_ip", sa.String(64), nullable=False),
        sa.Column("proto", sa.String(16), nullable=False),
        sa.Column("in_iface", sa.String(64), nullable=True),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("raw", _JSON, nullable=False),
    )
    op.create_index("ix_alerts_last_seen", "alerts", ["last_seen"])
    op.create_index("ix_alerts_fingerprint", "alerts", ["fingerprint", "first_seen"])
    op.create_table(
        "eve_rejects",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("received", sa.Float, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "metric_samples",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("node", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_index("ix_metric_samples_node_name_ts", "metric_samples", ["node", "name", "ts"])
    op.create_table(
        "metric_rollups",
        sa.Column("node", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.Float, primary_key=True),
        sa.Column("vmin", sa.Float, nullable=False),
        sa.Column("vmax", sa.Float, nullable=False),
        sa.Column("vsum", sa.Float, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
    )
    op.create_table(
        "playbook_runs",
        sa.Column(
            "session", sa.String(64), sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("playbook", sa.String(200), nullable=False),
        sa.Column("trigger", _JSON, nullable=False),
        sa.Column("alert_id", sa.String(40), nullable=True),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_index("ix_playbook_runs_playbook_created", "playbook_runs", ["playbook", "created"])


def downgrade() -> None:
    op.drop_index("ix_playbook_runs_playbook_created", table_name="playbook_runs")
    op.drop_table("playbook_runs")
    op.drop_table("metric_rollups")
    op.drop_index("ix_metric_samples_node_name_ts", table_name="metric_samples")
    op.drop_table("metric_samples")
    op.drop_table("eve_rejects")
    op.drop_index("ix_alerts_fingerprint", table_name="alerts")
    op.drop_index("ix_alerts_last_seen", table_name="alerts")
    op.drop_table("alerts")
