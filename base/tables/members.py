"""Tables for logins: one row per user who can sign in to the web hub (a verified e-mail address
belongs to one login only, without regard to case), and the server-side web sessions their
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
    case,
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
# One login per address among verified ones, without regard to case (members.emails).
Index("uq_logins_email_lower", func.lower(logins.c.email), unique=True,
      postgresql_where=logins.c.email_verified_at.is_not(None),
      sqlite_where=logins.c.email_verified_at.is_not(None))

# The address to write to: a login's e-mail once verified, else NULL.
verified_email = case((logins.c.email_verified_at.is_not(None), logins.c.email), else_=None)

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
