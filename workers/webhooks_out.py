"""The RQ jobs of outbound webhooks (`outbound.delivery`): one attempt at a delivery, and the
sweep that queues the deliveries whose job was lost."""

from __future__ import annotations

from datetime import datetime

from ledger.sql import utcnow
from outbound import delivery
from pipeline.context import current


def deliver(delivery_id: int) -> str:
    """One attempt at a delivery; a failure that will be retried queues the next attempt at its
    time. Returns the delivery's state afterwards."""
    context = current()
    outcome = delivery.attempt(context.engine, context.config, delivery_id)
    return delivery.DELIVERIES.retry_later(context.redis, delivery_id, outcome, utcnow())


def dispatch_due(now: datetime | None = None) -> int:
    """The scheduler's sweep (every `outbound.sweep_seconds`): queue the deliveries due for
    longer than that. Returns how many."""
    context = current()
    return delivery.DELIVERIES.dispatch_due(context.engine, context.redis,
                                            delivery.stale(context.config, now or utcnow()))
