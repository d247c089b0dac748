"""Tables of the fleet's enrollment and action state (migration ``0002_fleet``).

Timestamps are ISO-8601 UTC strings, as in the session store. Bootstrap-token secrets are stored
only as SHA-256 hashes.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

from fazai.store.schema import JSONType

# Own metadata: Alembic creates these tables; nothing calls create_all.
metadata = MetaData()

fleet_tokens = Table(
    "fleet_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("site", String(128), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("used_at", String(32), nullable=True),
    Column("used_by", String(64), nullable=True),
    Column("note", Text, nullable=True),
)

fleet_enrollments = Table(
    "fleet_enrollments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("node", String(128), nullable=False),
    Column("site", String(128), nullable=False),
    Column("token_id", String(32), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("csr", Text, nullable=False),
    # pending → approved → issued, or rejected
    Column("status", String(16), nullable=False),
    Column("hostname", String(255), nullable=True),
    Column("facts", JSONType, nullable=True),
    Column("created_at", String(32), nullable=False),
    Column("decided_at", String(32), nullable=True),
    Column("cert_serial", String(64), nullable=True),
)

fleet_agents = Table(
    "fleet_agents",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("site", String(128), nullable=False),
    # active | revoked
    Column("status", String(16), nullable=False),
    Column("enrolled_at", String(32), nullable=False),
    Column("last_seen", String(32), nullable=True),
    Column("hello", JSONType, nullable=True),
)

fleet_certs = Table(
    "fleet_certs",
    metadata,
    Column("serial", String(64), primary_key=True),
    Column("node", String(128), nullable=False),
    Column("not_before", String(32), nullable=False),
    Column("not_after", String(32), nullable=False),
    Column("issued_at", String(32), nullable=False),
    Column("revoked_at", String(32), nullable=True),
    Column("reason", Text, nullable=True),
)

fleet_actions = Table(
    "fleet_actions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("node", String(128), nullable=False),
    Column("session", String(64), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("spec", JSONType, nullable=False),
    # queued → running → done | failed
    Column("state", String(16), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("exit_code", Integer, nullable=True),
    Column("result", JSONType, nullable=True),
)

Index("ix_fleet_certs_node", fleet_certs.c.node)
Index("ix_fleet_certs_revoked_at", fleet_certs.c.revoked_at)
Index("ix_fleet_actions_node_state", fleet_actions.c.node, fleet_actions.c.state)
Index("ix_fleet_enrollments_status", fleet_enrollments.c.status)

# Migration 0006_agent_routes: replicas sharing PostgreSQL (fazai.fleet.relay).
agent_routes = Table(
    "agent_routes",
    metadata,
    Column("node", String(128), primary_key=True),
    Column("replica", String(128), nullable=False),
    Column("connected_at", String(32), nullable=False),
)

agent_dispatch = Table(
    "agent_dispatch",
    metadata,
    Column("node", String(128), primary_key=True),
    Column("action_id", String(64), primary_key=True),
    Column("origin", String(128), nullable=False),
    Column("created_at", String(32), nullable=False),
)
