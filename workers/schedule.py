"""The scheduler of `flattr-hub scheduler`: RQ's CronScheduler enqueues the month-end settlement
on `settlement.day` at `settlement.time` (UTC), the inbox sweep every `worker.sweep_seconds`,
the outbound-delivery sweep every `outbound.sweep_seconds`, the notification sweep every
`notifications.sweep_seconds`, and the poller tick.

RQ evaluates cron expressions in the process's local time, so the scheduler process runs with
TZ=UTC. On start it also enqueues one settlement check, which catches up on a month whose
scheduled time passed while no scheduler ran (settling is idempotent and locked, so a
duplicate does no harm).
"""

from __future__ import annotations

import os
import time

from rq.cron import CronScheduler

from notifications import delivery
from outbound import webhooks as outbound
from pipeline import settling
from pipeline.context import Context, install
from pipeline.queues import SETTLE_TIMEOUT, enqueue_settlement
from workers import jobs, pollers


def make_scheduler(context: Context) -> CronScheduler:
    """Raises ValueError for an invalid `settlement.day` or `settlement.time`."""
    day, (hour, minute) = settling.settlement_time(context.config)
    os.environ["TZ"] = "UTC"
    time.tzset()
    install(context)
    scheduler = CronScheduler(connection=context.redis, logging_level="WARNING")
    scheduler.register(jobs.settle_due, "settlement", cron=f"{minute} {hour} {day} * *",
                       job_timeout=SETTLE_TIMEOUT, name="settlement")
    scheduler.register(jobs.sweep, "events",
                       interval=max(1, context.config.worker.sweep_seconds),
                       result_ttl=600, name="sweep")
    scheduler.register(outbound.dispatch_due, "outbound", result_ttl=600, name="outbound-sweep",
                       interval=max(1, context.config.outbound.sweep_seconds))
    scheduler.register(delivery.dispatch_due, "notifications", result_ttl=600,
                       name="notifications-sweep",
                       interval=max(1, context.config.notifications.sweep_seconds))
    if pollers.enabled_platforms(context.config):  # X, SoundCloud, Mastodon pollers
        scheduler.register(pollers.schedule_polls, "connectors", result_ttl=600, name="pollers",
                           interval=max(1, context.config.pollers.tick_seconds))
    return scheduler


def run_scheduler(context: Context) -> None:
    scheduler = make_scheduler(context)
    enqueue_settlement(context.redis)
    scheduler.start()
