"""The connectors' own tables (in the ledger's metadata, created by migration 0003).

- `poll_accounts`: each linked account a poller reads: its tokens (and an OAuth 1.0a token
  secret, column added by migration 0020), its place in the poll schedule (`next_poll_at`),
  its request window for per-user rate limits, and its state (`active`, or `relink` when its
  token is gone for good and the user must link again).
- `poll_seen`: what a poller saw liked by an account, with the time it was first seen; the
  diff of a new snapshot against it gives likes (new rows) and unlikes (rows that vanished).
- `mastodon_apps`: the client credentials of the app registered on each Mastodon instance
  and the redirect URIs it was registered with.
- `discord_reactions`: counted reactions present now, with the message author taken from the
  REACTION_ADD dispatch (REACTION_REMOVE does not carry it).
- `discord_guilds`: per-guild reaction emoji that count (default: `connectors.discord.emoji`).

Tokens are credentials: they are stored sealed with the token vault (`base.vault`, key
`web.token_key`), and never logged, printed or put in job arguments.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from ledger.schema import Id, metadata

ACCOUNT_STATES = ("active", "relink", "off")

poll_accounts = Table(
    "poll_accounts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("platform", String(32), nullable=False),
    Column("instance", String(255), nullable=False, server_default=text("''")),
    Column("platform_user_id", String(255), nullable=False),
    Column("remote_id", String(255), nullable=False),
    Column("access_token", Text, nullable=False),
    Column("refresh_token", Text, nullable=True),
    Column("token_secret", Text, nullable=True),  # OAuth 1.0a (Flickr): sealed like the tokens
    Column("token_expires_at", DateTime, nullable=True),
    Column("state", String(16), nullable=False, server_default=text("'active'")),
    Column("next_poll_at", DateTime, nullable=False),
    Column("last_polled_at", DateTime, nullable=True),
    Column("baseline_done", Boolean, nullable=False, server_default=false()),
    Column("window_started_at", DateTime, nullable=True),
    Column("window_requests", Integer, nullable=False, server_default=text("0")),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("last_error", String(255), nullable=True),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("state IN ('active', 'relink', 'off')", name="state"),
    UniqueConstraint("platform", "instance", "platform_user_id", name="uq_poll_accounts_identity"),
    Index("ix_poll_accounts_due", "platform", "state", "next_poll_at"),
)

poll_seen = Table(
    "poll_seen",
    metadata,
    Column("account_id", Id, ForeignKey("poll_accounts.id", ondelete="CASCADE"), nullable=False),
    Column("content_id", String(512), nullable=False),
    Column("owner_id", String(255), nullable=False),
    Column("url", Text, nullable=True),
    Column("title", Text, nullable=True),
    Column("first_seen_at", DateTime, nullable=False),
    PrimaryKeyConstraint("account_id", "content_id", name="pk_poll_seen"),
)

mastodon_apps = Table(
    "mastodon_apps",
    metadata,
    Column("instance", String(255), primary_key=True),
    Column("client_id", Text, nullable=False),
    Column("client_secret", Text, nullable=False),  # sealed with the token vault
    Column("created_at", DateTime, nullable=False),
    Column("redirect_uris", Text, nullable=True),  # registered, one a line; NULL = the oob one
)

discord_reactions = Table(
    "discord_reactions",
    metadata,
    Column("message_id", String(32), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("emoji", String(128), nullable=False),
    Column("author_id", String(32), nullable=False),
    Column("guild_id", String(32), nullable=True),
    Column("channel_id", String(32), nullable=False),
    Column("added_at", DateTime, nullable=False),
    PrimaryKeyConstraint("message_id", "user_id", "emoji", name="pk_discord_reactions"),
)

discord_guilds = Table(
    "discord_guilds",
    metadata,
    Column("guild_id", String(32), primary_key=True),
    Column("emoji", Text, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)
