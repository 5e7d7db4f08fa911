"""The tables of outbound webhooks (in the ledger's metadata, created by migration 0004).

- `outbound_endpoints`: URLs that creators and partners registered, each with its own
  Standard Webhooks secret (`whsec_…`), the event types it subscribed to (comma-separated),
  whether it is a partner endpoint (it receives the events of every user, and pledges to
  identities nobody has claimed), and whether it is enabled (else why not). `failing_since`
  is the first failed attempt since the last success; an endpoint failing for
  `outbound.disable_after_days` is disabled.
- `outbound_deliveries`: one message to one endpoint: the exact body sent (so every attempt
  signs the same bytes), its `webhook-id`, and where it is in the retry schedule. `event_key`
  makes emitting idempotent: the same event emitted twice is delivered once per endpoint.
- `outbound_attempts`: every HTTP attempt of a delivery, with its status or error.

Secrets are credentials: they are never logged, and printed once, when the endpoint is made.
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
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)

from ledger.schema import Id, metadata

DELIVERY_STATES = ("pending", "delivered", "failed")

outbound_endpoints = Table(
    "outbound_endpoints",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("event_types", String(255), nullable=False),
    Column("partner", Boolean, nullable=False, server_default=false()),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("disabled_reason", String(255), nullable=True),
    Column("failing_since", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_outbound_endpoints_user", "user_id"),
)

outbound_deliveries = Table(
    "outbound_deliveries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("endpoint_id", Id, ForeignKey("outbound_endpoints.id"), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("event_key", String(255), nullable=False),
    Column("webhook_id", String(64), nullable=False, unique=True),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime, nullable=True),
    Column("last_attempt_at", DateTime, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", String(255), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("delivered_at", DateTime, nullable=True),
    CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
    CheckConstraint("(state = 'pending') = (next_attempt_at IS NOT NULL)", name="pending_due"),
    UniqueConstraint("endpoint_id", "event_key", name="uq_outbound_deliveries_event"),
    Index("ix_outbound_deliveries_due", "state", "next_attempt_at"),
)

outbound_attempts = Table(
    "outbound_attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("delivery_id", Id, ForeignKey("outbound_deliveries.id"), nullable=False),
    Column("attempted_at", DateTime, nullable=False),
    Column("status", Integer, nullable=True),
    Column("error", String(255), nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_outbound_attempts_delivery", "delivery_id"),
)
