"""What operators see of the queues (`/ops/jobs`): how many jobs wait, run, wait for a retry or
failed for good in each queue; the jobs that failed for good, each with a short error; and
replaying one of them (back on its queue, as RQ's FailedJobRegistry.requeue does).

Errors are shortened to the exception's last line and the function it was raised in, and any
configured secret or password in a URL is masked, so the page shows no secret."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from redis import Redis
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from base.config import Settings, as_dict
from pipeline.queues import QUEUES, queue

FAILED_SHOWN = 100
ERROR_CHARS = 300
MASK = "***"
SECRET_KEYS = ("secret", "token", "password", "key")
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)
FRAME = re.compile(r'^\s*File "(?:[^"]*/)?([^"/]+)", line (\d+), in (\S+)')


class ReplayError(Exception):
    """A job that can not be replayed: unknown queue, or not (any longer) a failed job."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class QueueDepth:
    name: str
    queued: int
    started: int
    scheduled: int
    failed: int


@dataclass(frozen=True)
class FailedJob:
    queue: str
    id: str
    description: str
    failed_at: datetime | None
    error: str


@dataclass(frozen=True)
class Overview:
    depths: list[QueueDepth]
    failed: list[FailedJob]


def depths(redis: Redis) -> list[QueueDepth]:
    """Each queue's jobs: waiting, running, waiting for a retry, failed for good."""
    found = []
    for name in QUEUES:
        rq_queue = queue(name, redis)
        started, scheduled, failed = (
            registry(queue=rq_queue).get_job_count(cleanup=False)
            for registry in (StartedJobRegistry, ScheduledJobRegistry, FailedJobRegistry))
        found.append(QueueDepth(name, rq_queue.count, started, scheduled, failed))
    return found


def overview(redis: Redis, config: Settings, limit: int = FAILED_SHOWN) -> Overview:
    """The queue depths and the `limit` most recent failed jobs of every queue, newest first."""
    hidden = secret_values(config)
    failed = []
    for name in QUEUES:
        registry = FailedJobRegistry(name, connection=redis)
        ids = registry.get_job_ids(0, limit - 1, desc=True)
        for job in Job.fetch_many(ids, connection=redis):
            if job is not None:
                result = job.latest_result()
                failed.append(FailedJob(
                    name, job.id, shorten(job.description or job.func_name or "", hidden),
                    job.ended_at, short_error(result.exc_string if result else None, hidden)))
    failed.sort(key=lambda job: job.failed_at or datetime.min, reverse=True)
    return Overview(depths(redis), failed[:limit])


def replay(redis: Redis, queue_name: str, job_id: str) -> None:
    """Put failed job `job_id` back on queue `queue_name`; the request id bound for logging (the
    operator's request) replaces the one the job was first enqueued under. Raises ReplayError."""
    if queue_name not in QUEUES:
        raise ReplayError(400, f"there is no queue {queue_name!r}")
    registry = FailedJobRegistry(queue_name, connection=redis)
    try:
        if job_id not in registry:
            raise NoSuchJobError(job_id)
        job = Job.fetch(job_id, connection=redis)
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            job.meta["request_id"] = request_id
            job.save_meta()
        registry.requeue(job)
    except (NoSuchJobError, InvalidJobOperation):
        raise ReplayError(404, "that job is not among the failed jobs of that queue (any more)"
                          ) from None


def short_error(exc_string: str | None, hidden: Iterable[str] = ()) -> str:
    """A traceback as its exception line and where it was raised (`file.py:12 in fn`), masked
    and at most ERROR_CHARS long."""
    if not exc_string:
        return "(no error recorded)"
    lines = [line for line in exc_string.splitlines() if line.strip()]
    frames = [(i, match) for i, line in enumerate(lines) if (match := FRAME.match(line))]
    # the exception line follows the last frame; lines after it (SQLAlchemy's "[SQL: …]" and
    # "(Background on this error …)") belong to its message
    after = lines[frames[-1][0] + 1:] if frames else lines
    last = next((line for line in after if not line[0].isspace()),
                next((line for line in reversed(lines) if not line[0].isspace()), lines[-1]))
    where = ""
    if frames:
        _, frame = frames[-1]
        where = f" ({frame[1]}:{frame[2]} in {frame[3]})"
    return shorten(last.strip() + where, hidden)


def shorten(text: str, hidden: Iterable[str] = ()) -> str:
    """`text` with the `hidden` values and URL passwords masked, cut to ERROR_CHARS."""
    for value in hidden:
        text = text.replace(value, MASK)
    text = URL_PASSWORD.sub(rf"\1{MASK}@", text)
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def secret_values(config: Settings) -> list[str]:
    """Every non-empty configured value under a key naming a secret, token, password or key,
    longest first (so that one containing another is masked whole)."""
    found: list[str] = []

    def walk(node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping):
                walk(value)
            elif isinstance(value, str) and value and any(
                    word in key.lower() for word in SECRET_KEYS):
                found.append(value)

    walk(as_dict(config))
    return sorted(set(found), key=len, reverse=True)
