"""SQLAlchemy Core tables of the telemetry store (created by migration ``0003_telemetry``).

Times are epoch seconds (floats): windows, retention and rollups are arithmetic on them.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()
_JSON = JSON().with_variant(JSONB(), "postgresql")
_ID = BigInteger().with_variant(Integer, "sqlite")

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("source", String(200), nullable=False),
    Column("fingerprint", String(400), nullable=False),
    Column("signature_id", BigInteger, nullable=False),
    Column("signature", Text, nullable=False),
    Column("category", Text),
    Column("severity", Integer),
    Column("src_ip", String(64), nullable=False),
    Column("dest_ip", String(64), nullable=False),
    Column("proto", String(16), nullable=False),
    Column("in_iface", String(64)),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("count", Integer, nullable=False),
    Column("raw", _JSON, nullable=False),
)

eve_rejects = Table(
    "eve_rejects",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("received", Float, nullable=False),
    Column("line", Text, nullable=False),
    Column("reason", Text, nullable=False),
)

metric_samples = Table(
    "metric_samples",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("node", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("ts", Float, nullable=False),
    Column("value", Float, nullable=False),
)

metric_rollups = Table(
    "metric_rollups",
    metadata,
    Column("node", String(200), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("bucket", Float, primary_key=True),
    Column("vmin", Float, nullable=False),
    Column("vmax", Float, nullable=False),
    Column("vsum", Float, nullable=False),
    Column("n", Integer, nullable=False),
)

playbook_runs = Table(
    "playbook_runs",
    metadata,
    Column("session", String(64), primary_key=True),
    Column("playbook", String(200), nullable=False),
    Column("trigger", _JSON, nullable=False),
    Column("alert_id", String(40)),
    Column("created", Float, nullable=False),
)
