"""The RQ queues and how work is put on them.

Queues, in the order a worker serves them: `settlement` (month-end runs), `events` (draining the
inbox into the ledger), `connectors` (pollers), `outbound` (webhooks the hub sends),
`notifications` (e-mails and Discord messages to people). Jobs retry with backoff; a job that
fails for good stays in its queue's FailedJobRegistry with its error. A job enqueued while a
request id is bound for logging (a web request, or a job that was itself enqueued under one)
keeps it in `job.meta["request_id"]`; the worker binds it again while the job runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import structlog
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.job import Job

QUEUES = ("settlement", "events", "connectors", "outbound", "notifications")
WAKE_FLAG = "flattr:inbox:wake"
WAKE_FLAG_SECONDS = 60
DRAIN_RETRY = Retry(max=5, interval=[1, 5, 15, 60, 300])
DRAIN_TIMEOUT = 300
SETTLE_RETRY = Retry(max=3, interval=[60, 300, 900])
SETTLE_TIMEOUT = 6 * 3600

log = structlog.get_logger(__name__)


class TracedQueue(Queue):
    """A queue whose new jobs carry the request id bound for logging, if any."""

    def create_job(self, *args: Any, **kwargs: Any) -> Job:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            kwargs["meta"] = {"request_id": request_id, **(kwargs.get("meta") or {})}
        return super().create_job(*args, **kwargs)


def queue(name: str, redis: Redis) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name}")
    return TracedQueue(name, connection=redis)


def enqueue_ids(redis: Redis, name: str, func: str, ids: Iterable[int], *, timeout: int,
                describe: str, delay: timedelta | None = None) -> int:
    """Queue one `func(id)` job per id on queue `name` (after the commit that recorded the rows),
    to run after `delay` when that is positive. A Redis failure is logged, not raised: the
    caller's sweeper queues the rest later. Returns how many were queued."""
    options: dict[str, Any] = {"job_timeout": timeout, "result_ttl": 600}
    target = queue(name, redis)
    count = 0
    try:
        for row_id in ids:
            if delay and delay > timedelta(0):
                target.enqueue_in(delay, func, row_id, description=f"{describe} {row_id}",
                                  **options)
            else:
                target.enqueue(func, row_id, description=f"{describe} {row_id}", **options)
            count += 1
    except RedisError as exc:
        log.warning("queue_unreachable", queue=name, error=exc.__class__.__name__)
    return count


def wake(redis: Redis, *, force: bool = False) -> bool:
    """Make sure a drain job will look at the inbox; return whether one was enqueued.

    Without `force`, at most one drain job waits at a time: the flag is set with the job and
    cleared by the job when it starts, before it reads the inbox, so no new row is missed.
    With `force` (the sweeper, a drain that ran out of time) a job is enqueued unless one is
    already waiting. Redis errors are logged, not raised: the inbox is durable and the sweeper
    enqueues again later.
    """
    try:
        if force:
            if queue("events", redis).count:
                return False
            redis.set(WAKE_FLAG, "1", ex=WAKE_FLAG_SECONDS)
        elif not redis.set(WAKE_FLAG, "1", nx=True, ex=WAKE_FLAG_SECONDS):
            return False
        queue("events", redis).enqueue(
            "workers.jobs.drain", retry=DRAIN_RETRY, job_timeout=DRAIN_TIMEOUT,
            result_ttl=600, description="drain the inbox into the ledger")
        return True
    except RedisError as exc:
        log.warning("queue_unreachable", error=exc.__class__.__name__)
        return False


def enqueue_settle_helpers(redis: Redis, month: str, count: int) -> None:
    """Queue `count` helper jobs that settle chunks of `month`'s running settlement beside the
    run's own job (on other workers). Redis errors are logged: the run settles alone."""
    try:
        for _ in range(count):
            queue("settlement", redis).enqueue(
                "workers.jobs.settle_help", month, job_timeout=SETTLE_TIMEOUT, result_ttl=600,
                description=f"help settle {month}")
    except RedisError as exc:
        log.warning("queue_unreachable", queue="settlement", error=exc.__class__.__name__)


def enqueue_settlement(redis: Redis) -> None:
    queue("settlement", redis).enqueue(
        "workers.jobs.settle_due", retry=SETTLE_RETRY, job_timeout=SETTLE_TIMEOUT,
        description="settle the months that have ended")
