"""The durable inbox: every accepted webhook event is a row here before the hub answers 2xx.

Rows are written in groups (one transaction for all requests that arrived together) and
consumed by workers, which claim rows (lock them and mark them processed, one statement) and
record their events through `ledger.ingest` in the same transaction. A row is pending while
`processed_at` is NULL. Claiming uses `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent
workers take disjoint rows; on SQLite the engine's `BEGIN IMMEDIATE` makes the whole
claim-and-ingest transaction exclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from operator import itemgetter
from typing import Any

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

from base.tables.inbox import inbox
from ledger.events import NormalisedEvent
from ledger.sql import compiled, utcnow


@dataclass(frozen=True, slots=True)
class Entry:
    """One accepted event, the platform's id of the delivery (request) it came with, and the
    hub's id of the HTTP request that delivered it (`X-Request-ID`, logged by the worker)."""

    event: NormalisedEvent
    request_id: str | None
    hub_request_id: str | None = None


# Rows per INSERT: 6,000 parameters, below SQLite's limit (32,766) and PostgreSQL's (65,535).
ROWS_PER_STATEMENT = 1000


def append(conn: Connection, entries: Sequence[Entry]) -> None:
    """Insert `entries` as pending rows (the caller commits), in the order given.

    The hub's hot path: one multi-row INSERT at the driver level (per `ROWS_PER_STATEMENT`),
    without per-row statement processing. One statement rather than an executemany because
    the driver releases the interpreter's lock around each statement it runs, and the group
    commit's thread then waits for the busy event loop to hand it back, once per row."""
    if not entries:
        return
    sqlite = conn.dialect.name == "sqlite"
    now: datetime | str = utcnow()
    if sqlite:
        now = now.isoformat(" ")  # type: ignore[union-attr]  # SQLAlchemy's SQLite format
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    row = f"({', '.join([mark] * 6)})"
    for start in range(0, len(entries), ROWS_PER_STATEMENT):
        chunk = entries[start:start + ROWS_PER_STATEMENT]
        values: list[Any] = []
        for entry in chunk:
            event = entry.event
            values += (event.platform, event.event_id, orjson.dumps(event.to_dict()).decode(),
                       entry.request_id, entry.hub_request_id, now)
        conn.exec_driver_sql(
            "INSERT INTO inbox (platform, event_id, event, request_id, hub_request_id, "
            f"received_at) VALUES {', '.join([row] * len(chunk))}", tuple(values))


@dataclass(frozen=True)
class Claimed:
    """Pending rows taken by `claim`: their ids, their events as stored, and the hub request ids
    that delivered them (each once, in order of first arrival)."""

    ids: list[int]
    stored: list[str]
    request_ids: list[str]

    def events(self) -> list[NormalisedEvent]:
        """The events, decoded; raises on a row that can not be (the caller quarantines it)."""
        return [_load(text) for text in self.stored]


def claim(conn: Connection, limit: int) -> Claimed:
    """Take up to `limit` of the oldest pending rows for this transaction: lock them (skipping
    rows other transactions hold) and mark them processed in the same statement, so that the
    marks commit with the batch recorded from them, or roll back with it."""
    if conn.dialect.name == "postgresql":
        # A queue table's statistics are always stale: planned for the few pending rows of its
        # last ANALYZE, the subquery read every pending row by bitmap and sorted them all to
        # take `limit` (20,000 rows for each batch of a backlog of 20,000). Without bitmap
        # scans (for this transaction, whose other lookups are by key) it walks the pending
        # index in order and stops after `limit`.
        conn.exec_driver_sql("SELECT set_config('enable_bitmapscan', 'off', true)")
        result = conn.exec_driver_sql(
            compiled(conn, ("claim",), partial(_claim_statement, True)),
            {"limit": limit, "now": utcnow()})
    else:
        result = conn.execute(_claim_statement(False), {"limit": limit, "now": utcnow()})
    rows = sorted(result.all(), key=itemgetter(0))
    return Claimed([row[0] for row in rows], [row[1] for row in rows],
                   list(dict.fromkeys(row[2] for row in rows if row[2])))


def _claim_statement(postgresql: bool) -> Any:
    oldest = (select(inbox.c.id).where(inbox.c.processed_at.is_(None))
              .order_by(inbox.c.id).limit(bindparam("limit")).with_for_update(skip_locked=True))
    # PostgreSQL plans `id IN (subquery)` as a hash join over the whole table; `id = ANY(ARRAY(
    # subquery))` runs the subquery once and looks its ids up by primary key
    chosen = (inbox.c.id == any_(func.array(oldest.scalar_subquery()))
              if postgresql else inbox.c.id.in_(oldest.scalar_subquery()))
    return (update(inbox).where(chosen).values(processed_at=bindparam("now"))
            .returning(inbox.c.id, inbox.c.event, inbox.c.hub_request_id))


def _load(text: str) -> NormalisedEvent:
    """An event as `append` stored it. It was validated before it was stored, so it is rebuilt
    without validating again (the worker's hot path)."""
    data = orjson.loads(text)
    data["occurred_at"] = datetime.fromisoformat(data["occurred_at"].rstrip("Z"))
    return NormalisedEvent(**data)


def mark_processed(conn: Connection, ids: Sequence[int]) -> None:
    """Mark the locked rows `ids` processed."""
    conn.execute(update(inbox).where(inbox.c.id.in_(ids)).values(processed_at=utcnow()))


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
