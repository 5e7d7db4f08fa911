"""The RQ worker of `flattr-hub worker`: serves every queue, in one process (no fork per job,
so the database pool is kept between jobs), with RQ's scheduler for retry backoff. It sweeps
the inbox when it starts and at each RQ maintenance pass (every `worker.sweep_seconds`)."""

from __future__ import annotations

import gc
import signal
from typing import Any

import structlog
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.utils import import_attribute
from sqlalchemy.exc import SQLAlchemyError

from pipeline.context import Context, install
from pipeline.queues import QUEUES
from workers import jobs

log = structlog.get_logger(__name__)
# Jobs are queued by the dotted path of their function. These moved into workers/; a job queued
# under the old path before an upgrade (a retry waits up to 10 hours) runs the function's new
# home.
MOVED_JOBS = {
    "outbound.webhooks.deliver": "workers.webhooks_out.deliver",
    "outbound.webhooks.dispatch_due": "workers.webhooks_out.dispatch_due",
    "notifications.delivery.deliver": "workers.notices.deliver",
    "notifications.delivery.dispatch_due": "workers.notices.dispatch_due",
}


class FlattrJob(Job):
    """A job whose function may have moved since it was queued (`MOVED_JOBS`)."""

    @property
    def func(self) -> Any:
        moved = MOVED_JOBS.get(self.func_name or "")
        return import_attribute(moved) if moved else super().func


class FlattrWorker(SimpleWorker):
    job_class = FlattrJob

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """RQ's work loop; the SIGINT/SIGTERM handlers RQ installs for it are removed again when
        it returns. Left installed, they outlive an in-process worker (`worker --burst`, tests)
        and turn a later SIGTERM, even in a forked child, into `StopRequested`."""
        before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            return super().work(*args, **kwargs)
        finally:
            for number, handler in before.items():
                signal.signal(number, handler)

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """Run the job with its id and the request id it was enqueued under (if any) bound to
        every line it logs."""
        bound = {"job_id": job.id, "job": job.func_name}
        request_id = (job.meta or {}).get("request_id")
        if request_id:
            bound["request_id"] = request_id
        with structlog.contextvars.bound_contextvars(**bound):
            return super().perform_job(job, queue, execution)

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        try:
            jobs.sweep()
        except (RedisError, SQLAlchemyError) as exc:
            log.warning("sweep_failed", error=exc.__class__.__name__)


def tune_collector() -> None:
    """Set the garbage collector for a long-running worker or hub, once its start-up is done. What
    start-up made (modules, tables, SQLAlchemy's caches: about 170,000 objects) stays for the
    process's life: frozen, the collector's full passes no longer walk it (two passes of 130 ms
    in 30 drain batches, about 9 ms of CPU per 1,000 inbox events). A batch's objects die with
    it: with Python's 700 allocations between young passes, ten passes per batch walked them
    first (3 ms per 1,000 events); with 50,000, none does. The hub's requests likewise."""
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


def make_worker(context: Context) -> FlattrWorker:
    install(context)
    sweep_seconds = max(1, context.config.worker.sweep_seconds)
    return FlattrWorker(list(QUEUES), connection=context.redis,
                        maintenance_interval=sweep_seconds, worker_ttl=sweep_seconds + 15)


def run_worker(context: Context, *, burst: bool = False) -> bool:
    """Sweep once (any pending row gets a drain job), then work until stopped; with `burst`,
    until the queues are empty. Returns whether any job ran."""
    worker = make_worker(context)
    jobs.sweep(stale_seconds=0)
    return worker.work(burst=burst, with_scheduler=not burst, logging_level="WARNING")
