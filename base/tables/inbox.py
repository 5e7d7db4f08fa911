"""The inbox (every accepted event, before the hub answers 2xx) and its quarantine (events the
worker could not record, set aside); their logic is in `pipeline.inbox` and
`pipeline.quarantine`."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from ledger.schema import Id, metadata

REASON_CHARS = 300

inbox = Table(
    "inbox",
    metadata,
    Column("id", Id, primary_key=True),
    Column("platform", String(32), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("event", Text, nullable=False),
    Column("request_id", String(255), nullable=True),
    Column("hub_request_id", String(128), nullable=True),
    Column("received_at", DateTime, nullable=False),
    Column("processed_at", DateTime, nullable=True),
    Index("ix_inbox_pending", "id", sqlite_where=text("processed_at IS NULL"),
          postgresql_where=text("processed_at IS NULL")),
    Index("ix_inbox_processed_at", "processed_at"),
)

quarantine = Table(
    "inbox_quarantine",
    metadata,
    Column("id", Id, primary_key=True),
    Column("platform", String(32), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("event", Text, nullable=False),
    Column("inbox_id", Id, nullable=True),
    Column("state", String(16), nullable=False),
    Column("reason", String(REASON_CHARS), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("first_seen", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    CheckConstraint("state IN ('quarantined', 'retried', 'discarded')", name="state"),
    CheckConstraint("attempts >= 1", name="attempts_positive"),
    CheckConstraint("first_seen <= last_seen", name="seen_in_order"),
    UniqueConstraint("platform", "event_id", name="uq_inbox_quarantine_event"),
)
