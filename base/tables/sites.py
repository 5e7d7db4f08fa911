"""Tables for web-site claims: a member asks to claim a host name and proves it with a token
published on the site (meta tag, `/.well-known/flattr.txt`) or in its DNS."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table, UniqueConstraint

from ledger.schema import Id, _fk, metadata

site_claims = Table(
    "site_claims",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, _fk("users"), nullable=False),
    Column("host", String(253), nullable=False),
    Column("token", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("verified_at", DateTime, nullable=True),
    UniqueConstraint("user_id", "host", name="uq_site_claims_user_host"),
)
