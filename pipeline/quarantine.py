"""Quarantine: an inbox event the worker can not record is set aside, so it never blocks the
events after it.

The drain records a batch in one transaction (`workers.jobs.process_batch`). When that raises
for a reason that is not the database being unreachable, `guard` turns the error into
`BatchFailed` with the ids of the claimed rows, and the drain calls `isolate`: the batch is
split in half (the oldest half is claimed next) until the failing event stands alone; that
event is then quarantined (`hold`): a row here keeps a copy of it with a reason (the error's
class and first line, without SQL parameters or secrets), the attempts, and when it was first
and last seen, and its inbox row is deleted. Every other event is recorded.

An operator lists quarantined events (`flattr-hub inbox quarantined`, `/ops/quarantine`) and
either retries one (a fresh pending inbox row with the same event; if it fails again it comes
back here with one more attempt) or discards it (kept here, marked discarded, never recorded).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import (
    Connection,
    Engine,
    func,
    select,
    update,
)
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from base.tables.inbox import REASON_CHARS, quarantine
from ledger.sql import dialect_insert, utcnow
from pipeline import inbox

STATES = ("quarantined", "retried", "discarded")
# The database (or the way to it) failing is no fault of an event: the batch is retried later.
TRANSIENT = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)

log = structlog.get_logger(__name__)


class BatchFailed(Exception):
    """Recording the inbox rows `ids` raised `cause` (their transaction was rolled back)."""

    def __init__(self, ids: Sequence[int], cause: BaseException) -> None:
        self.reason = reason_of(cause)
        super().__init__(self.reason)
        self.ids = list(ids)
        self.cause = cause


class NotQuarantined(LookupError):
    """No quarantined event has that id. The message is safe to show."""


@dataclass(frozen=True, slots=True)
class Held:
    id: int
    platform: str
    event_id: str
    state: str
    reason: str
    attempts: int
    received_at: datetime
    first_seen: datetime
    last_seen: datetime


@contextmanager
def guard(ids: Sequence[int]) -> Iterator[None]:
    """Turn an error while recording the claimed rows `ids` into BatchFailed, unless the
    database itself is failing (those errors pass unchanged: the batch waits and is retried)."""
    try:
        yield
    except TRANSIENT:
        raise
    except Exception as exc:
        raise BatchFailed(ids, exc) from exc


def isolate(engine: Engine, failed: BatchFailed, limit: int) -> tuple[int, int]:
    """What the drain does after `failed`: (the batch size to claim next, events quarantined).
    A batch of several rows is split (its oldest half is claimed next); a row that failed
    alone is quarantined and the drain goes on at full size."""
    if len(failed.ids) > 1:
        return max(1, len(failed.ids) // 2), 0
    return limit, int(hold(engine, failed.ids[0], failed.reason))


def hold(engine: Engine, inbox_id: int, reason: str) -> bool:
    """Quarantine pending inbox row `inbox_id` (in a transaction of its own): keep a copy of
    its event here and delete the row. False when the row is gone (recorded) or another
    transaction holds it."""
    with engine.begin() as conn:
        row = conn.execute(
            select(inbox.inbox.c.platform, inbox.inbox.c.event_id, inbox.inbox.c.event,
                   inbox.inbox.c.received_at)
            .where(inbox.inbox.c.id == inbox_id)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return False
        now = utcnow()
        stmt = dialect_insert(conn, quarantine).values(
            platform=row.platform, event_id=row.event_id, event=row.event, inbox_id=inbox_id,
            state="quarantined", reason=reason, attempts=1, received_at=row.received_at,
            first_seen=now, last_seen=now)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["platform", "event_id"],
            set_={"state": "quarantined", "reason": reason, "inbox_id": inbox_id,
                  "event": stmt.excluded.event, "last_seen": now,
                  "attempts": quarantine.c.attempts + 1}))
        inbox.remove(conn, [inbox_id])
    log.warning("inbox_event_quarantined", inbox_id=inbox_id, platform=row.platform,
                reason=reason)
    return True


def reason_of(exc: BaseException) -> str:
    """The error's class and the first line of its message, as safe text: for database errors
    the driver's own message (SQLAlchemy's would add the SQL and its parameters)."""
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    text = f"{cause.__class__.__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:REASON_CHARS]


def listing(conn: Connection, state: str = "quarantined", limit: int = 100) -> list[Held]:
    """Events in `state`, oldest first."""
    rows = conn.execute(
        select(quarantine.c.id, quarantine.c.platform, quarantine.c.event_id,
               quarantine.c.state, quarantine.c.reason, quarantine.c.attempts,
               quarantine.c.received_at, quarantine.c.first_seen, quarantine.c.last_seen)
        .where(quarantine.c.state == state).order_by(quarantine.c.id).limit(limit)
    ).all()
    return [Held(*row) for row in rows]


def count(conn: Connection) -> int:
    """How many events are quarantined now (neither retried nor discarded)."""
    return conn.execute(select(func.count()).select_from(quarantine)
                        .where(quarantine.c.state == "quarantined")).scalar_one()


def retry(conn: Connection, held_id: int) -> int:
    """Put quarantined event `held_id` back into the inbox as a new pending row (the caller
    wakes the queue); its id. Raises NotQuarantined."""
    row = _quarantined(conn, held_id)
    new_id = conn.execute(inbox.inbox.insert().values(
        platform=row.platform, event_id=row.event_id, event=row.event,
        request_id=None, received_at=utcnow()).returning(inbox.inbox.c.id)).scalar_one()
    conn.execute(update(quarantine).where(quarantine.c.id == held_id)
                 .values(state="retried", inbox_id=new_id))
    log.info("quarantined_event_retried", id=held_id, inbox_id=new_id)
    return new_id


def discard(conn: Connection, held_id: int) -> None:
    """Mark quarantined event `held_id` discarded: it is kept here and never recorded."""
    _quarantined(conn, held_id)
    conn.execute(update(quarantine).where(quarantine.c.id == held_id)
                 .values(state="discarded"))
    log.info("quarantined_event_discarded", id=held_id)


def _quarantined(conn: Connection, held_id: int) -> Any:
    row = conn.execute(select(quarantine).where(quarantine.c.id == held_id)
                       .with_for_update()).first()
    if row is None or row.state != "quarantined":
        raise NotQuarantined(f"no quarantined event {held_id}")
    return row
