"""auth, audit and vault: users, grants, API and refresh tokens, session scopes, audit records, secrets

Revision ID: 0004_auth
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_auth"
down_revision = "0001"
branch_labels = ("auth",)
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "auth_users",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        # Bumped on a password change: refresh tokens and access tokens issued before it stop working.
        sa.Column("token_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "auth_grants",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("user_id", _BIGINT, sa.ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.UniqueConstraint("user_id", "scope", name="uq_auth_grants_user_scope"),
    )
    op.create_table(
        "auth_api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", _BIGINT, sa.ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "auth_refresh_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", _BIGINT, sa.ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("token_version", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("used", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    # Which organisation/site a session belongs to (the unit roles are granted on).
    op.create_table(
        "auth_session_scopes",
        sa.Column(
            "session_id", sa.String(64), sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("org", sa.String(100), nullable=False),
        sa.Column("site", sa.String(100), nullable=False),
    )
    op.create_table(
        "audit_records",
        sa.Column("seq", _BIGINT, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "vault_secrets",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    # One row: a value encrypted under the master key, so a wrong key is told apart before any use.
    op.create_table(
        "vault_meta",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("check_value", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    for t in (
        "vault_meta",
        "vault_secrets",
        "audit_records",
        "auth_session_scopes",
        "auth_refresh_tokens",
        "auth_api_tokens",
        "auth_grants",
        "auth_users",
    ):
        op.drop_table(t)
