"""Month-end settlement as operators see and start it (`/ops/settlements`): the runs so far, the
ended months still waiting to be settled, whether a settlement job waits or runs, and "settle
ended months now", which queues the job the scheduler queues (`workers.jobs.settle_due`: under
the settlement lock, every due month, oldest first).

Pressing the button again while a job waits queues nothing more: that job settles every ended
month when it runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import Engine

from base.config import Settings
from ledger.months import add_months, month_of, month_start
from ledger.runs import Run, recent_runs
from ledger.settlement import next_month_to_settle
from pipeline.queues import enqueue_settlement, queue

SETTLE_LOCK = "flattr:lock:settlement"
REQUEST_LOCK = "flattr:lock:settlement-request"
REQUEST_LOCK_SECONDS = 10


@dataclass(frozen=True)
class SettlementJobs:
    """The settlement queue: jobs waiting, running (or the lock held by a run), waiting to
    retry after a failure."""

    waiting: int
    running: bool
    retrying: int


@dataclass(frozen=True)
class SettlementOverview:
    runs: list[Run]
    due: list[str]
    jobs: SettlementJobs | None  # None: Redis could not be reached


def overview(engine: Engine, redis: Redis, config: Settings,
             now: datetime) -> SettlementOverview:
    """The recent runs, the ended months not settled yet at `now` (naive UTC), oldest first, and
    the settlement queue (None when Redis does not answer: the caller says so)."""
    with engine.connect() as conn:
        runs = recent_runs(conn)
    done = {run.month for run in runs if run.state == "done"}
    due = [month for month in months_due(engine, config, now) if month not in done]
    try:
        jobs = settlement_jobs(redis)
    except RedisError:
        jobs = None
    return SettlementOverview(runs, due, jobs)


def settlement_jobs(redis: Redis) -> SettlementJobs:
    settlement = queue("settlement", redis)
    started = StartedJobRegistry(queue=settlement).get_job_count(cleanup=False)
    return SettlementJobs(
        waiting=settlement.count,
        running=bool(started) or bool(redis.exists(SETTLE_LOCK)),
        retrying=ScheduledJobRegistry(queue=settlement).get_job_count(cleanup=False))


def settle_now(redis: Redis) -> bool:
    """Queue a settlement job unless one is waiting already; True when one was queued. Raises
    RedisError when Redis does not answer (LockError, one of them, when another request holds
    the short lock that keeps two presses from queueing two jobs for too long)."""
    with redis.lock(REQUEST_LOCK, timeout=REQUEST_LOCK_SECONDS,
                    blocking_timeout=REQUEST_LOCK_SECONDS):
        if queue("settlement", redis).count:
            return False
        enqueue_settlement(redis)
        return True


def settlement_time(config: Settings) -> tuple[int, tuple[int, int]]:
    """(`settlement.day`, (hour, minute) of `settlement.time`), validated."""
    day = config.settlement.day
    if not 1 <= day <= 28:
        raise ValueError("settlement.day must be between 1 and 28")
    try:
        hour, minute = (int(part) for part in config.settlement.time.split(":"))
    except ValueError:
        raise ValueError("settlement.time must be written HH:MM (UTC)") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError("settlement.time must be written HH:MM (UTC)")
    return day, (hour, minute)


def months_due(engine: Engine, config: Settings, now: datetime) -> list[str]:
    """The months to settle at `now` (naive UTC), oldest first: every month not yet settled up
    to the last one whose settlement time (`settlement.day` at `settlement.time`, UTC, of the
    following month) has passed. The last of them is always included, so that an interrupted
    run of it is finished (settling a done month changes nothing)."""
    day, (hour, minute) = settlement_time(config)
    this_month = month_of(now)
    scheduled = month_start(this_month).replace(day=day, hour=hour, minute=minute)
    ended = add_months(this_month, -1 if now >= scheduled else -2)
    with engine.connect() as conn:
        first = min(next_month_to_settle(conn) or ended, ended)
    months = [first]
    while months[-1] < ended:
        months.append(add_months(months[-1], 1))
    return months
