"""The outbox lifecycle that outbound webhooks (`outbound.delivery`) and notices
(`notifications.delivery`) share: a row per message, written in the transaction of what causes
it; one RQ job per row, queued after the commit; attempts retried on a schedule; a sweep that
queues again what is due but whose job was lost.

An attempt (`Outbox.attempt`) leases its row (pushes its next attempt past the time sending
can take) in a short transaction, so that a duplicate job skips it, sends with no transaction
open, then records the outcome in another: done, `failed` (a refusal that will not change, or
the retry schedule used up), or `pending` again at the next time of the schedule. A row marked
done is never sent again; a worker that dies between sending and recording leaves the row
pending, and the sweep queues it again once its lease has run out: delivery is at least once.

The jobs themselves are in `workers/` (`workers.notices`, `workers.webhooks_out`): they take the
job context and call the domain's attempt (`Outbox.attempt` with its lease and send), then
`retry_later`; the sweeps call `dispatch_due`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import structlog
from redis import Redis
from sqlalchemy import Connection, Engine, Table, select, update

from pipeline.queues import enqueue_ids

T = TypeVar("T")

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Attempt:
    """What one call of `attempt` did: the row's state afterwards (or `not_due`, `missing`),
    the HTTP status if an answer came, and when the row is due again if it is still pending."""

    state: str
    status: int | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True)
class Leased(Generic[T]):
    """A row leased for one attempt: its id, the attempts made before, what sending needs, and
    what the log lines of its outcome say about it."""

    id: int
    attempts: int
    item: T
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    """What sending did: `error` None when it went out; `permanent` when the refusal will not
    change (fail now); `status`, the HTTP answer; how long it took; `values`, columns of the
    row to record with it."""

    error: str | None = None
    permanent: bool = False
    status: int | None = None
    elapsed_ms: int = 0
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outbox:
    """One outbox: its table (with the columns `id, state, attempts, next_attempt_at,
    last_error` and `<done>_at`), the queue and dotted path of the job that makes one attempt,
    its retry schedule (the wait before each attempt, the first 0), the state of a row sent
    (`done`), and the name its log lines and counts start with."""

    table: Table
    queue: str
    job: str
    describe: str
    retry_schedule: tuple[timedelta, ...]
    done: str
    name: str
    observe: Callable[[str], None] = lambda _outcome: None  # done | failed | retry
    timeout: int = 120  # RQ's limit for one job; the network timeouts are far shorter
    dispatch_limit: int = 1000

    def enqueue(self, redis: Redis, ids: Iterable[int], *,
                delay: timedelta | None = None) -> int:
        """Queue a job per row (after the commit that recorded them), after `delay`. A Redis
        failure is logged, not raised: `dispatch_due` queues them later. Returns how many."""
        return enqueue_ids(redis, self.queue, self.job, ids, timeout=self.timeout,
                           describe=self.describe, delay=delay)

    def retry_later(self, redis: Redis, row_id: int, outcome: Attempt, now: datetime) -> str:
        """After a job's attempt: queue the row's next job for when it is due again (if it is;
        with Redis down, `dispatch_due` queues it once it is due). The row's state."""
        if outcome.retry_at is not None:
            self.enqueue(redis, [row_id], delay=outcome.retry_at - now)
        return outcome.state

    def dispatch_due(self, engine: Engine, redis: Redis, stale: datetime) -> int:
        """The sweep: queue the pending rows due since `stale` or before (their job was lost,
        or never queued), oldest first. Returns how many."""
        c = self.table.c
        with engine.connect() as conn:
            ids = list(conn.execute(
                select(c.id).where(c.state == "pending", c.next_attempt_at <= stale)
                .order_by(c.next_attempt_at).limit(self.dispatch_limit)).scalars())
        count = self.enqueue(redis, ids)
        if count:
            log.info(f"{self.name}_dispatched", count=count)
        return count

    def attempt(self, engine: Engine, now: datetime,
                lease: Callable[[Connection], Leased[T] | Attempt],
                send: Callable[[Leased[T]], Sent],
                settle: Callable[[Connection, Leased[T], Sent], Attempt | None] | None = None
                ) -> Attempt:
        """One attempt (see the module): `lease(conn)` selects the row FOR UPDATE, checks it
        (`due`, and its own reasons not to send) and leases it, in one transaction; `send` runs
        with no transaction open; `settle(conn, leased, sent)`, if given, runs in the
        transaction that records the attempt and may decide its outcome."""
        with engine.begin() as conn:
            leased = lease(conn)
        if isinstance(leased, Attempt):
            return leased
        sent = send(leased)
        with engine.begin() as conn:
            return self.record(conn, leased, now, sent,
                               None if settle is None else lambda: settle(conn, leased, sent))

    def due(self, row: Any, now: datetime) -> bool:
        """In a lease: whether the row (selected FOR UPDATE) is to be attempted at `now`
        (else its attempt is `not_due`: done, or leased by another job, or waiting)."""
        return bool(row.state == "pending" and row.next_attempt_at <= now)

    def lease(self, conn: Connection, row_id: int, until: datetime) -> None:
        """Hold the row until `until`: no sweep queues it before then."""
        conn.execute(update(self.table).where(self.table.c.id == row_id)
                     .values(next_attempt_at=until))

    def finish(self, conn: Connection, row_id: int, state: str, error: str | None) -> None:
        """End the row in `state` without another attempt (skipped, failed)."""
        values: dict[str, Any] = {"state": state, "next_attempt_at": None}
        if error is not None:
            values["last_error"] = error[:255]
        conn.execute(update(self.table).where(self.table.c.id == row_id).values(**values))

    def record(self, conn: Connection, leased: Leased[Any], now: datetime, sent: Sent,
               settle: Callable[[], Attempt | None] | None = None) -> Attempt:
        """Record an attempt made at `now`: the row is done, pending at its next retry time, or
        failed. `settle` (run after the attempt is counted) may decide the outcome itself."""
        attempts = leased.attempts + 1
        error = None if sent.error is None else sent.error[:255]
        row = self.table.c.id == leased.id
        conn.execute(update(self.table).where(row)
                     .values(attempts=attempts, last_error=error, **sent.values))
        fields = {**leased.fields, "attempt": attempts}
        if sent.status is not None:
            fields["status"] = sent.status
        settled = settle() if settle is not None else None
        if settled is not None:
            self.observe("failed" if settled.state == "failed" else settled.state)
            return settled
        if sent.error is None:
            conn.execute(update(self.table).where(row).values(
                state=self.done, next_attempt_at=None, **{f"{self.done}_at": now}))
            log.info(f"{self.name}_{self.done}", **fields)
            self.observe(self.done)
            return Attempt(self.done, sent.status)
        if sent.permanent or attempts >= len(self.retry_schedule):
            conn.execute(update(self.table).where(row).values(state="failed",
                                                              next_attempt_at=None))
            log.warning(f"{self.name}_failed", error=sent.error, **fields)
            self.observe("failed")
            return Attempt("failed", sent.status)
        retry_at = now + self.retry_schedule[attempts]
        conn.execute(update(self.table).where(row).values(next_attempt_at=retry_at))
        log.info(f"{self.name}_retry", error=sent.error, retry_at=retry_at.isoformat(), **fields)
        self.observe("retry")
        return Attempt("pending", sent.status, retry_at)

