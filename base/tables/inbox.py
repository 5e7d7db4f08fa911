"""The inbox (every accepted event, stored before the hub answers 2xx and deleted by the batch
that records it) and its quarantine (events the worker could not record, set aside); their
logic is in `pipeline.inbox` and `pipeline.quarantine`."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
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
