"""The durable inbox: every accepted webhook event is a row here before the hub answers 2xx.

Rows are written in groups (one transaction for all requests that arrived together) and
consumed by workers, which record the events through `ledger.ingest` and mark the rows
processed in the same transaction. A row is pending while `processed_at` is NULL.
Claiming uses `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent workers take disjoint
rows; on SQLite the engine's `BEGIN IMMEDIATE` makes the whole claim-ingest-mark transaction
exclusive.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    any_,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from base.tables.inbox import inbox
from ledger.events import NormalisedEvent
from ledger.sql import utcnow


@dataclass(frozen=True, slots=True)
class Entry:
    """One accepted event, the platform's id of the delivery (request) it came with, and the
    hub's id of the HTTP request that delivered it (`X-Request-ID`, logged by the worker)."""

    event: NormalisedEvent
    request_id: str | None
    hub_request_id: str | None = None


def append(conn: Connection, entries: Sequence[Entry]) -> None:
    """Insert `entries` as pending rows (the caller commits).

    The hub's hot path: one driver-level executemany, without per-row statement processing."""
    if not entries:
        return
    sqlite = conn.dialect.name == "sqlite"
    now: datetime | str = utcnow()
    if sqlite:
        now = now.isoformat(" ")  # type: ignore[union-attr]  # SQLAlchemy's SQLite format
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO inbox (platform, event_id, event, request_id, hub_request_id, received_at) "
        f"VALUES ({', '.join([mark] * 6)})",
        [(entry.event.platform, entry.event.event_id,
          orjson.dumps(entry.event.to_dict()).decode(), entry.request_id,
          entry.hub_request_id, now)
         for entry in entries])


@dataclass(frozen=True)
class Claimed:
    """Pending rows locked by `claim`: their ids, events, and the hub request ids that delivered
    them (each once, in order of first arrival)."""

    ids: list[int]
    events: list[NormalisedEvent]
    request_ids: list[str]


def claim(conn: Connection, limit: int) -> Claimed:
    """Lock up to `limit` of the oldest pending rows for this transaction."""
    rows = conn.execute(
        select(inbox.c.id, inbox.c.event, inbox.c.hub_request_id)
        .where(inbox.c.processed_at.is_(None))
        .order_by(inbox.c.id).limit(limit).with_for_update(skip_locked=True)
    ).all()
    return Claimed([row.id for row in rows], [_load(row.event) for row in rows],
                   list(dict.fromkeys(row.hub_request_id for row in rows if row.hub_request_id)))


def _load(text: str) -> NormalisedEvent:
    """An event as `append` stored it. It was validated before it was stored, so it is rebuilt
    without validating again (the worker's hot path)."""
    data = json.loads(text)
    data["occurred_at"] = datetime.fromisoformat(data["occurred_at"].rstrip("Z"))
    return NormalisedEvent(**data)


def mark_processed(conn: Connection, ids: Sequence[int]) -> None:
    """Mark the claimed rows `ids` processed (on PostgreSQL as `id = ANY(:array)`: one
    statement text, one bound value, whatever the batch size)."""
    chosen = (inbox.c.id == any_(bindparam("ids", list(ids), type_=ARRAY(inbox.c.id.type)))
              if conn.dialect.name == "postgresql" else inbox.c.id.in_(ids))
    conn.execute(update(inbox).where(chosen).values(processed_at=utcnow()))


def oldest_pending(conn: Connection) -> datetime | None:
    """When the oldest pending row arrived, or None when nothing is pending."""
    return conn.execute(
        select(func.min(inbox.c.received_at)).where(inbox.c.processed_at.is_(None))
    ).scalar()


def pending_count(conn: Connection) -> int:
    return conn.execute(
        select(func.count()).select_from(inbox).where(inbox.c.processed_at.is_(None))
    ).scalar_one()


def prune(conn: Connection, keep: timedelta) -> int:
    """Delete rows processed longer than `keep` ago; return how many."""
    result = conn.execute(delete(inbox).where(inbox.c.processed_at < utcnow() - keep))
    return result.rowcount


def store(engine: Engine, entries: Sequence[Entry]) -> None:
    """Insert `entries` in one transaction of their own (the hub's group commit)."""
    with engine.begin() as conn:
        append(conn, entries)
