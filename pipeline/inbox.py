"""The durable inbox: every accepted webhook event is a row here before the hub answers 2xx.

Rows are written in groups (one transaction for all requests that arrived together) and
consumed by workers, which claim rows (lock and delete them, one statement) and record their
events through `ledger.ingest` in the same transaction: committed, the events are in the
ledger (its `events` table keeps each one) and the rows gone; rolled back, the rows are back.
So every row in the inbox is pending. Claiming uses `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
concurrent workers take disjoint rows; on SQLite the engine's `BEGIN IMMEDIATE` makes the whole
claim-and-ingest transaction exclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    delete,
    func,
    select,
)
from sqlalchemy.exc import DBAPIError

from base.tables.inbox import inbox
from ledger.events import NormalisedEvent
from ledger.sql import utcnow

if TYPE_CHECKING:
    import psycopg

# PostgreSQL plans `id IN (subquery)` as a hash join over the whole table; `id = ANY(ARRAY(
# subquery))` runs the subquery once and looks its ids up by primary key.
CLAIM_POSTGRESQL = ("DELETE FROM inbox WHERE id = ANY(ARRAY(SELECT id FROM inbox ORDER BY id"
                    " LIMIT %(limit)s FOR UPDATE SKIP LOCKED)) RETURNING id, event, hub_request_id")
CLAIM_SQLITE = ("DELETE FROM inbox WHERE id IN (SELECT id FROM inbox ORDER BY id LIMIT ?)"
                " RETURNING id, event, hub_request_id")


@dataclass(frozen=True, slots=True)
class Entry:
    """One accepted event, the platform's id of the delivery (request) it came with, and the
    hub's id of the HTTP request that delivered it (`X-Request-ID`, logged by the worker)."""

    event: NormalisedEvent
    request_id: str | None
    hub_request_id: str | None = None


STORED = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
COLUMNS = "platform, event_id, event, request_id, hub_request_id, received_at"
COPY = f"COPY inbox ({COLUMNS}) FROM STDIN"

# Rows per INSERT on SQLite: 6,000 parameters, below its limit (32,766).
ROWS_PER_STATEMENT = 1000


def append(conn: Connection, entries: Sequence[Entry]) -> None:
    """Insert `entries` as pending rows (the caller commits), in the order given.

    The hub's hot path, without per-row statement processing: on PostgreSQL one `COPY`
    (`_copy`), on SQLite a multi-row INSERT at the driver level (per `ROWS_PER_STATEMENT`).
    One statement rather than an executemany because the driver releases the interpreter's
    lock around each statement it runs, and the group commit's thread then waits for the busy
    event loop to hand it back, once per row."""
    if not entries:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, entries)
        return
    now = utcnow().isoformat(" ")  # SQLAlchemy's SQLite format
    for start in range(0, len(entries), ROWS_PER_STATEMENT):
        chunk = entries[start:start + ROWS_PER_STATEMENT]
        values: list[object] = []
        for entry in chunk:
            values += _row(entry, now)
        conn.exec_driver_sql(f"INSERT INTO inbox ({COLUMNS}) VALUES "
                             f"{', '.join(['(?, ?, ?, ?, ?, ?)'] * len(chunk))}", tuple(values))


def _copy(conn: Connection, entries: Sequence[Entry]) -> None:
    """`entries` in one `COPY … FROM STDIN` on `conn`'s psycopg connection: psycopg formats
    the rows in C, and the server neither parses nor plans a statement of thousands of
    parameters (PostgreSQL's client CPU per row: 4 µs against 10 µs for the INSERT). A
    single statement, so on a connection in autocommit (`hub.inbox_writer`) the rows are
    committed together or not at all. The driver's errors come as SQLAlchemy's, as from
    `Connection.execute`; a connection the server dropped is invalidated."""
    driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    now = utcnow()
    try:
        with driver.cursor() as cursor, cursor.copy(COPY) as copy:
            for entry in entries:
                copy.write_row(_row(entry, now))
    except conn.dialect.loaded_dbapi.Error as exc:
        dropped = conn.dialect.is_disconnect(exc, conn.connection, None)
        if dropped:
            conn.invalidate(exc)
        raise DBAPIError.instance(COPY, None, exc, conn.dialect.loaded_dbapi.Error,
                                  connection_invalidated=dropped, dialect=conn.dialect
                                  ) from exc


def _row(entry: Entry, now: datetime | str) -> tuple[object, ...]:
    """`entry`'s values for the inbox's `COLUMNS`."""
    event = entry.event
    return (event.platform, event.event_id, orjson.dumps(event, option=STORED).decode(),
            entry.request_id, entry.hub_request_id, now)


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
    rows other transactions hold) and delete them in the same statement, so that they are gone
    when the batch recorded from them commits, and back when it rolls back. (Marking them
    processed instead wrote a second version of each row and its index entries.)"""
    if conn.dialect.name == "postgresql":
        result = conn.exec_driver_sql(CLAIM_POSTGRESQL, {"limit": limit})
    else:
        result = conn.exec_driver_sql(CLAIM_SQLITE, (limit,))
    rows = sorted(result.all(), key=itemgetter(0))
    return Claimed([row[0] for row in rows], [row[1] for row in rows],
                   list(dict.fromkeys(row[2] for row in rows if row[2])))


def _load(text: str) -> NormalisedEvent:
    """An event as `append` stored it. It was validated before it was stored, so it is rebuilt
    without validating again (the worker's hot path)."""
    data = orjson.loads(text)
    data["occurred_at"] = datetime.fromisoformat(data["occurred_at"].rstrip("Z"))
    return NormalisedEvent(**data)


def remove(conn: Connection, ids: Sequence[int]) -> None:
    """Delete the locked rows `ids` (the caller has kept what it needs of them)."""
    conn.execute(delete(inbox).where(inbox.c.id.in_(ids)))


def oldest_pending(conn: Connection) -> datetime | None:
    """When the oldest pending row arrived, or None when nothing is pending."""
    return conn.execute(
        select(inbox.c.received_at).order_by(inbox.c.id).limit(1)
    ).scalar()


def pending_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(inbox)).scalar_one()


def store(engine: Engine, entries: Sequence[Entry]) -> None:
    """Insert `entries` in one transaction of their own (the hub's group commit)."""
    with engine.begin() as conn:
        append(conn, entries)
