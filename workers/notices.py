"""The RQ jobs of the notification outbox (`notifications.delivery`): one attempt at a notice,
and the sweep that queues the notices whose job was lost."""

from __future__ import annotations

from datetime import datetime

from ledger.sql import utcnow
from notifications import delivery
from pipeline.context import current


def deliver(notice_id: int) -> str:
    """One attempt at a notice; when it is due again later (a retry, the hourly cap), its next
    job is queued for then. Returns the notice's state afterwards."""
    context = current()
    outcome = delivery.attempt(context.engine, context.config, notice_id)
    return delivery.NOTICES.retry_later(context.redis, notice_id, outcome, utcnow())


def dispatch_due(now: datetime | None = None) -> int:
    """The scheduler's sweep (every `notifications.sweep_seconds`): queue the notices due for
    longer than that. Returns how many."""
    context = current()
    return delivery.NOTICES.dispatch_due(context.engine, context.redis,
                                         delivery.stale(context.config, now or utcnow()))
