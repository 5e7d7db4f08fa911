"""Tables of the OAuth 2.0 provider: third-party applications registered by members, the
authorization codes they receive, and the Bearer tokens those codes become. Secrets, codes and
tokens are stored only as SHA-256 hashes."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, String, Table, Text

from ledger.schema import Id, _fk, metadata

oauth_apps = Table(
    "oauth_apps",
    metadata,
    Column("id", Id, primary_key=True),
    Column("owner_id", Id, _fk("users"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("client_id", String(64), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_oauth_apps_owner", "owner_id"),
)

oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("app_id", Id, _fk("oauth_apps"), nullable=False),
    Column("user_id", Id, _fk("users"), nullable=False),
    Column("scopes", String(100), nullable=False),
    Column("redirect_uri", Text, nullable=True),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime, nullable=True),
)

oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("app_id", Id, _fk("oauth_apps"), nullable=False),
    Column("user_id", Id, _fk("users"), nullable=False),
    Column("scopes", String(100), nullable=False),
    Column("code_hash", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
    Index("ix_oauth_tokens_code", "code_hash"),
    Index("ix_oauth_tokens_user", "user_id"),
)
