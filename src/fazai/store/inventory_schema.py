"""Tables of the inventory (created by migration ``0005_inventory``; queries in ``inventory.py``)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Integer, String, Table
from sqlalchemy.dialects.postgresql import JSONB

from fazai.store.schema import metadata

_JSON = JSON().with_variant(JSONB(), "postgresql")
_ID = BigInteger().with_variant(Integer, "sqlite")

inv_orgs = Table(
    "inv_orgs", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", String(32), nullable=False),
)  # fmt: skip
inv_sites = Table(
    "inv_sites", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("org_id", _ID, ForeignKey("inv_orgs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("created_at", String(32), nullable=False),
)  # fmt: skip
inv_groups = Table(
    "inv_groups", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("site_id", _ID, ForeignKey("inv_sites.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("created_at", String(32), nullable=False),
)  # fmt: skip
inv_nodes = Table(
    "inv_nodes", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("name", String(253), nullable=False, unique=True),
    Column("org_id", _ID, ForeignKey("inv_orgs.id"), nullable=False),
    Column("site_id", _ID, ForeignKey("inv_sites.id"), nullable=True),
    Column("group_id", _ID, ForeignKey("inv_groups.id"), nullable=True),
    Column("transport", String(16), nullable=False),
    Column("address", String(255), nullable=True),
    Column("port", Integer, nullable=True),
    Column("ssh_user", String(64), nullable=True),
    Column("tags", _JSON, nullable=False),
    Column("labels", _JSON, nullable=False),
    Column("version", String(64), nullable=True),
    Column("last_heartbeat", String(32), nullable=True),
    Column("facts", _JSON, nullable=True),
    Column("facts_at", String(32), nullable=True),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
)  # fmt: skip
