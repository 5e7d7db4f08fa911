"""The tables of notifications (in the ledger's metadata, created by migration 0009).

- `notification_outbox`: one notice to send. `kind` is `pledges_waiting` (to the creator of an
  unclaimed identity, at most one per identity ever: `dedupe_key` is `waiting:<identity>`) or
  `pledgee_joined` (to a giver whose pledges' identity was claimed: `joined:<identity>:<user>`).
  The recipient's address is looked up when it is sent. `state` is `pending` (with
  `next_attempt_at`), `sent`, `failed` (retries exhausted) or `skipped` (nobody to tell any more:
  opted out, claimed meanwhile, preference off, no address).
- `notification_optouts`: identities whose creator asked never to be told again.
- `notification_settings`: a member's choices; no row means the defaults (told).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    text,
    true,
)

from ledger.schema import Id, _fk, metadata

KINDS = ("pledges_waiting", "pledgee_joined")
CHANNELS = ("email", "discord")
STATES = ("pending", "sent", "failed", "skipped")

notification_outbox = Table(
    "notification_outbox",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("identity_id", Id, _fk("identities"), nullable=False),
    Column("user_id", Id, _fk("users"), nullable=True),
    Column("dedupe_key", String(255), nullable=False, unique=True),
    Column("state", String(16), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime, nullable=True),
    Column("last_error", String(255), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime, nullable=True),
    CheckConstraint("kind IN ('pledges_waiting', 'pledgee_joined')", name="kind"),
    CheckConstraint("channel IN ('email', 'discord')", name="channel"),
    CheckConstraint("state IN ('pending', 'sent', 'failed', 'skipped')", name="state"),
    CheckConstraint("(state = 'pending') = (next_attempt_at IS NOT NULL)", name="pending_due"),
    CheckConstraint("(state = 'sent') = (sent_at IS NOT NULL)", name="sent_time"),
    Index("ix_notification_outbox_due", "state", "next_attempt_at"),
    Index("ix_notification_outbox_sent", "kind", "sent_at"),
)

notification_optouts = Table(
    "notification_optouts",
    metadata,
    Column("identity_id", Id, _fk("identities"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
)

notification_settings = Table(
    "notification_settings",
    metadata,
    Column("user_id", Id, _fk("users"), primary_key=True),
    Column("pledgee_joined", Boolean, nullable=False, server_default=true()),
    Column("updated_at", DateTime, nullable=False),
)
