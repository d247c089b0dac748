"""Tables of users, grants and tokens (created by migration ``0004_auth``, never ``create_all``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, MetaData, String, Table

metadata = MetaData()
_BIGINT = BigInteger().with_variant(Integer, "sqlite")

users = Table(
    "auth_users",
    metadata,
    Column("id", _BIGINT, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("token_version", Integer, nullable=False, default=1),
    Column("created_at", String(32), nullable=False),
)

grants = Table(
    "auth_grants",
    metadata,
    Column("id", _BIGINT, primary_key=True, autoincrement=True),
    Column("user_id", _BIGINT, ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("scope", String(200), nullable=False),
)

api_tokens = Table(
    "auth_api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", _BIGINT, ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=True),
    Column("revoked", Boolean, nullable=False, default=False),
)

refresh_tokens = Table(
    "auth_refresh_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", _BIGINT, ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("token_version", Integer, nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("used", Boolean, nullable=False, default=False),
)

session_scopes = Table(
    "auth_session_scopes",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("org", String(100), nullable=False),
    Column("site", String(100), nullable=False),
)
