"""Tables for logins: one row per user who can sign in to the web hub (e-mail addresses unique
without regard to case, and used only once verified), and the server-side web sessions their
cookies refer to (stored as hashes of the session ids)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    String,
    Table,
    false,
    func,
)

from ledger.schema import Id, _fk, metadata

logins = Table(
    "logins",
    metadata,
    Column("user_id", Id, _fk("users"), primary_key=True),
    Column("email", String(254), nullable=True),
    Column("password_hash", String(255), nullable=True),
    Column("operator", Boolean, nullable=False, server_default=false()),
    Column("created_at", DateTime, nullable=False),
    Column("email_verified_at", DateTime, nullable=True),
)
Index("uq_logins_email_lower", func.lower(logins.c.email), unique=True)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Id, _fk("users"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    CheckConstraint("last_seen_at >= created_at", name="seen_after_created"),
    Index("ix_web_sessions_user", "user_id"),
    Index("ix_web_sessions_seen", "last_seen_at"),
)
