"""Tables for logins: one row per user who can sign in to the web hub."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, String, Table, false

from ledger.schema import Id, _fk, metadata

logins = Table(
    "logins",
    metadata,
    Column("user_id", Id, _fk("users"), primary_key=True),
    Column("email", String(254), nullable=True, unique=True),
    Column("password_hash", String(255), nullable=True),
    Column("operator", Boolean, nullable=False, server_default=false()),
    Column("created_at", DateTime, nullable=False),
)
