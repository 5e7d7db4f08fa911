"""The scheduler of `flattr-hub scheduler`: RQ's CronScheduler enqueues the jobs of `SCHEDULES`:
the month-end settlement on `settlement.day` at `settlement.time` (UTC), the inbox sweep every
`worker.sweep_seconds`, the outbound-delivery sweep every `outbound.sweep_seconds`, the
notification sweep every `notifications.sweep_seconds`, and the poller tick.

RQ evaluates cron expressions in the process's local time, so the scheduler process runs with
TZ=UTC. On start it also enqueues one settlement check, which catches up on a month whose
scheduled time passed while no scheduler ran (settling is idempotent and locked, so a
duplicate does no harm).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rq.cron import CronScheduler

from base.config import Settings
from pipeline import settling
from pipeline.context import Context, install
from pipeline.queues import SETTLE_TIMEOUT, enqueue_settlement
from workers import jobs, notices, pollers, webhooks_out


@dataclass(frozen=True)
class Schedule:
    """A job the scheduler enqueues: its name, what it does (the command's help says it), the
    job and its queue, every how many seconds (a config value; None: the settlement's monthly
    time), and whether this configuration wants it."""

    name: str
    what: str
    job: Callable[..., Any]
    queue: str
    seconds: Callable[[Settings], int] | None
    wanted: Callable[[Settings], Any] = lambda _config: True


SCHEDULES = (
    Schedule("settlement", "the month-end settlement", jobs.settle_due, "settlement", None),
    Schedule("sweep", "the inbox sweep", jobs.sweep, "events",
             lambda config: config.worker.sweep_seconds),
    Schedule("outbound-sweep", "the outbound webhook sweep", webhooks_out.dispatch_due,
             "outbound", lambda config: config.outbound.sweep_seconds),
    Schedule("notifications-sweep", "the notification sweep", notices.dispatch_due,
             "notifications", lambda config: config.notifications.sweep_seconds),
    Schedule("pollers", "the pollers' tick (while a poller is configured)",
             pollers.schedule_polls, "connectors",
             lambda config: config.pollers.tick_seconds, pollers.enabled_platforms),
)


def make_scheduler(context: Context) -> CronScheduler:
    """Raises ValueError for an invalid `settlement.day` or `settlement.time`."""
    day, (hour, minute) = settling.settlement_time(context.config)
    os.environ["TZ"] = "UTC"
    time.tzset()
    install(context)
    scheduler = CronScheduler(connection=context.redis, logging_level="WARNING")
    for schedule in SCHEDULES:
        if not schedule.wanted(context.config):
            continue
        if schedule.seconds is None:
            scheduler.register(schedule.job, schedule.queue, cron=f"{minute} {hour} {day} * *",
                               job_timeout=SETTLE_TIMEOUT, name=schedule.name)
        else:
            scheduler.register(schedule.job, schedule.queue, result_ttl=600, name=schedule.name,
                               interval=max(1, schedule.seconds(context.config)))
    return scheduler


def run_scheduler(context: Context) -> None:
    scheduler = make_scheduler(context)
    enqueue_settlement(context.redis)
    scheduler.start()
