"""Vault tables (created by migration ``0004_auth``)."""

from __future__ import annotations

from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table

metadata = MetaData()

secrets = Table(
    "vault_secrets",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("nonce", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("version", Integer, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
)

meta = Table(
    "vault_meta",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", String(16), nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("check_value", LargeBinary, nullable=False),
)
