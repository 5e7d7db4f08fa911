"""RQ jobs: draining the inbox into the ledger, sweeping it, and the month-end settlement.

Drain: each batch is one transaction that claims pending inbox rows (deleting them) and
records their events with `ledger.ingest.ingest`, so a batch counts exactly once or not at all
(a worker killed mid-batch leaves its rows pending). The ledger's own deduplication on
(platform, event_id) is a second guard against redelivered webhooks. A batch that fails for a
reason of its own (not the database being down) is split until the failing event stands alone,
and that event is quarantined (`pipeline.quarantine`), so it never blocks the events after it.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial

import structlog
from redis.exceptions import LockError, RedisError
from sqlalchemy import Engine

from base import metrics
from base.config import Settings
from ledger.ingest import ingest
from ledger.settlement import settle, settle_chunks
from ledger.sql import utcnow
from notifications import delivery as notice_delivery
from notifications import outbox as notify
from outbound import delivery as webhook_delivery
from outbound import events as webhook_events
from pipeline import inbox, quarantine
from pipeline.context import Context, current
from pipeline.queues import SETTLE_TIMEOUT, WAKE_FLAG, enqueue_settle_helpers, wake
from pipeline.settling import SETTLE_LOCK, months_due

DRAIN_SECONDS = 5.0

log = structlog.get_logger(__name__)


def process_batch(engine: Engine, limit: int, config: Settings
                  ) -> tuple[int, Counter[str], list[int], list[int]]:
    """Record up to `limit` pending inbox events in one transaction: (rows, outcome counts,
    outbound deliveries to send, notices to send). The outbound webhooks and notices the new
    flattrs and pledges cause (as `config` has them) are recorded in the same transaction, so
    none is lost."""
    with engine.begin() as conn:
        batch = inbox.claim(conn, limit)
        if not batch.ids:
            return 0, Counter(), [], []
        with quarantine.guard(batch.ids):
            events = batch.events()
            result = ingest(conn, events)
            deliveries = webhook_events.emit_for_ingest(conn, config, events, result)
            notices = notify.record_for_ingest(conn, config, events, result)
    metrics.record_ingest(result.counts)
    log.info("inbox_batch_recorded", rows=len(batch.ids), request_ids=batch.request_ids,
             outcomes=dict(result.counts))
    return len(batch.ids), result.counts, deliveries, notices


def drain() -> dict[str, int]:
    """Process pending inbox rows batch by batch until none are left, or for a few seconds (then
    hand over to a fresh job so that other queues get their turn). A first batch that is full
    queues one more drain job, so that other workers help with a backlog (their claims skip
    the rows this one holds).

    On PostgreSQL, `worker.drain_connections` such loops run at once (threads, a connection
    each, claims skipping each other's rows): while the database works on one batch, the next
    is decoded and prepared here. SQLite takes one writer at a time, so one loop."""
    context = current()
    with contextlib.suppress(RedisError):  # the flag expires by itself
        context.redis.delete(WAKE_FLAG)
    limit = context.config.worker.batch_size
    deadline = time.monotonic() + DRAIN_SECONDS
    lanes = (1 if context.engine.dialect.name == "sqlite"
             else max(1, context.config.worker.drain_connections))
    if lanes == 1:
        return dict(_drain_loop(context, limit, deadline))
    with ThreadPoolExecutor(lanes) as pool:  # each lane keeps the job's logging context
        loops = [pool.submit(contextvars.copy_context().run, _drain_loop, context, limit,
                             deadline) for _ in range(lanes)]
        totals: Counter[str] = Counter()
        for loop in loops:
            totals.update(loop.result())  # keeps zero counts, unlike Counter's +
    return dict(totals)


def _drain_loop(context: Context, limit: int, deadline: float) -> Counter[str]:
    """Batches until one is not full or the deadline passed; the outcome counts."""
    totals: Counter[str] = Counter()
    size = limit
    while True:
        try:
            rows, counts, deliveries, notices = process_batch(context.engine, size,
                                                              context.config)
        except quarantine.BatchFailed as failed:
            size, held = quarantine.isolate(context.engine, failed, limit)
            totals["quarantined"] += held
            continue
        webhook_delivery.enqueue(context.redis, deliveries)
        notice_delivery.enqueue(context.redis, notices)
        totals.update(counts)
        totals["rows"] += rows
        if rows < size:
            break
        if totals["rows"] == rows:  # a backlog: an idle worker may take a drain job too
            wake(context.redis)
        if time.monotonic() > deadline:
            wake(context.redis, force=True)
            break
    return totals


def sweep(stale_seconds: float | None = None) -> dict[str, int]:
    """Enqueue a drain if inbox rows have waited longer than `stale_seconds` (default
    `worker.sweep_seconds`): this recovers from a lost queue (Redis restarted empty, the hub
    died between commit and enqueue, a worker killed mid-batch)."""
    context = current()
    seconds = context.config.worker.sweep_seconds
    stale = float(seconds if stale_seconds is None else stale_seconds)
    with context.engine.connect() as conn:
        oldest = inbox.oldest_pending(conn)
    woke = oldest is not None and oldest <= utcnow() - timedelta(seconds=stale) and wake(
        context.redis, force=True)
    if woke:
        log.info("inbox_swept", woke=True)
    return {"woke": int(bool(woke))}


def settle_help(month: str) -> int:
    """Settle chunks of `month`'s running settlement beside its run (`settlement.jobs`);
    returns how many this job settled (none once the run is done)."""
    context = current()
    return settle_chunks(context.engine, month, context.config.money)


def settle_due(now: datetime | None = None) -> list[str]:
    """Settle the months that are due, under a Redis lock so that only one run goes at a time
    (the ledger's settlement is idempotent besides). Returns the months settled."""
    context = current()
    lock = context.redis.lock(SETTLE_LOCK, timeout=SETTLE_TIMEOUT, blocking=False)
    if not lock.acquire():
        log.info("settlement_locked")
        return []
    try:
        months = months_due(context.engine, context.config, now or utcnow())
        for month in months:
            started = time.monotonic()
            summary = settle(context.engine, month, context.config.money,
                             planned=partial(enqueue_settle_helpers, context.redis, month,
                                             context.config.settlement.jobs - 1))
            metrics.record_settlement(summary, time.monotonic() - started)
            with context.engine.begin() as conn:
                deliveries = webhook_events.emit_settlement(conn, context.config, month)
            webhook_delivery.enqueue(context.redis, deliveries)
            log.info("month_settled", month=month, givers=summary.givers,
                     flattrs=summary.flattrs, amount=summary.amount)
        return months
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("settlement_lock_expired")

