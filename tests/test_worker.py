"""Workers: the inbox drained into the ledger exactly once, by a real RQ worker on a real Redis;
failures kept in RQ's registries; the sweeper; the month-end settlement job."""

import signal
from datetime import datetime, timedelta

import pytest
from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from base.config import with_overrides
from hub.simulate import github_star
from ledger.events import NormalisedEvent
from ledger.schema import events as events_table
from ledger.schema import flattrs, settlement_runs
from ledger.verify import verify
from pipeline import inbox, settling
from pipeline.inbox import Entry
from pipeline.queues import WAKE_FLAG, enqueue_settlement, wake
from tests.hub_helpers import GITHUB_SECRET, reinstall, seed_github_users
from workers import jobs
from workers.worker import run_worker

pytest_plugins = ["tests.hub_fixtures"]


def like(n: int, *, actor: str = "1", owner: str = "2", event_id: str | None = None,
         when: str = "2026-10-03T12:00:00+00:00") -> Entry:
    event = NormalisedEvent.from_dict({
        "event_id": event_id or f"e-{n}", "platform": "github", "kind": "like",
        "actor_id": actor, "content_id": f"repo-{n}", "owner_id": owner, "occurred_at": when})
    return Entry(event, event.event_id)


def count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def pending(engine) -> int:
    with engine.connect() as conn:
        return inbox.pending_count(conn)


def test_drain_records_each_event_once_and_deletes_its_rows(worker_context, engine, hub_config):
    seed_github_users(engine, hub_config)
    inbox.store(engine, [like(n) for n in range(25)] + [like(3, event_id="e-3")])
    reinstall(worker_context, {"worker.batch_size": 10})
    totals = jobs.drain()
    assert totals["rows"] == 26
    assert count(engine, flattrs) == 25
    assert count(engine, events_table) == 25
    assert pending(engine) == 0
    assert jobs.drain() == {"rows": 0}
    assert count(engine, flattrs) == 25


@pytest.mark.parametrize("batch_size", [7, 12])
def test_a_worker_claims_at_most_batch_size_rows_per_transaction(worker_context, engine,
                                                                 hub_config, monkeypatch,
                                                                 batch_size):
    """`worker.batch_size` bounds what one transaction claims: the rows each batch takes
    (on PostgreSQL two drain lanes take batches side by side)."""
    seed_github_users(engine, hub_config)
    inbox.store(engine, [like(n) for n in range(30)])
    reinstall(worker_context, {"worker.batch_size": batch_size})
    marked: list[int] = []
    claim = inbox.claim

    def counting(conn, limit):
        batch = claim(conn, limit)
        if batch.ids:
            marked.append(len(batch.ids))
        return batch

    monkeypatch.setattr(inbox, "claim", counting)
    assert jobs.drain()["rows"] == 30
    full, rest = divmod(30, batch_size)
    assert sorted(marked, reverse=True) == [batch_size] * full + [rest]
    assert (pending(engine), count(engine, flattrs)) == (0, 30)


def test_a_failing_batch_changes_nothing_and_is_retried(worker_context, engine, hub_config,
                                                         monkeypatch):
    seed_github_users(engine, hub_config)
    inbox.store(engine, [like(n) for n in range(5)])

    def broken(conn, events):
        raise OperationalError("INSERT", {}, Exception("database went away mid-batch"))

    monkeypatch.setattr(jobs, "ingest", broken)
    with pytest.raises(OperationalError):
        jobs.drain()
    assert (pending(engine), count(engine, flattrs)) == (5, 0)
    monkeypatch.undo()
    jobs.drain()
    assert (pending(engine), count(engine, flattrs)) == (0, 5)


def test_rq_worker_drains_what_the_hub_queued(worker_context, engine, hub_config, redis):
    seed_github_users(engine, hub_config)
    inbox.store(engine, [like(n) for n in range(30)])
    assert wake(redis) is True
    assert wake(redis) is False
    assert run_worker(worker_context, burst=True)
    assert count(engine, flattrs) == 30
    assert pending(engine) == 0
    assert redis.get(WAKE_FLAG) is None
    with engine.connect() as conn:
        assert verify(conn) == []


def test_worker_start_sweeps_rows_whose_job_was_lost(worker_context, engine, hub_config, redis):
    seed_github_users(engine, hub_config)
    inbox.store(engine, [like(n) for n in range(3)])
    assert Queue("events", connection=redis).count == 0
    run_worker(worker_context, burst=True)
    assert count(engine, flattrs) == 3


def test_failed_jobs_keep_their_error_and_retry_with_backoff(worker_context, engine, redis,
                                                             monkeypatch):
    inbox.store(engine, [like(1)])

    def broken(conn, events):  # the database failing: no event's fault, so not quarantined
        raise OperationalError("INSERT", {}, Exception("ingest exploded"))

    monkeypatch.setattr(jobs, "ingest", broken)
    wake(redis)
    [job_id] = Queue("events", connection=redis).job_ids
    run_worker(worker_context, burst=True)
    job = Queue("events", connection=redis).fetch_job(job_id)
    assert job.retries_left == 4
    assert job.get_status() == "scheduled"
    job.retries_left = 0
    job.save()
    Queue("events", connection=redis).enqueue_job(job)
    run_worker(worker_context, burst=True)
    registry = FailedJobRegistry("events", connection=redis)
    assert job_id in registry.get_job_ids()
    result = Queue("events", connection=redis).fetch_job(job_id).latest_result()
    assert "ingest exploded" in result.exc_string
    assert pending(engine) == 1


def test_sweep_wakes_only_for_stale_rows(worker_context, engine, redis):
    inbox.store(engine, [like(1)])
    assert jobs.sweep() == {"woke": 0}
    with engine.begin() as conn:
        conn.execute(update(inbox.inbox).values(received_at=datetime(2026, 1, 1)))
    assert jobs.sweep() == {"woke": 1}
    assert jobs.sweep() == {"woke": 0}


def test_months_due_follow_the_configured_day_and_time(worker_context, engine, hub_config):
    hub_config = with_overrides(hub_config, {"settlement": dict(day=1, time="00:10")})
    assert settling.months_due(engine, hub_config, datetime(2026, 11, 1, 0, 9)) == ["2026-09"]
    assert settling.months_due(engine, hub_config, datetime(2026, 11, 1, 0, 10)) == ["2026-10"]
    inbox.store(engine, [like(1, when="2026-08-15T00:00:00+00:00")])
    seed_github_users(engine, hub_config)
    jobs.drain()
    assert settling.months_due(engine, hub_config, datetime(2026, 11, 2)) == [
        "2026-08", "2026-09", "2026-10"]
    hub_config = with_overrides(hub_config, {"settlement.day": 31})
    with pytest.raises(ValueError, match=r"settlement\.day"):
        settling.months_due(engine, hub_config, datetime(2026, 11, 2))


def test_settlement_job_settles_ended_months_once_under_a_lock(worker_context, engine,
                                                               hub_config, redis):
    seed_github_users(engine, hub_config)
    inbox.store(engine, [like(n, when="2026-09-10T00:00:00+00:00") for n in range(3)])
    jobs.drain()
    now = datetime(2026, 10, 1, 1, 0)
    lock = redis.lock(settling.SETTLE_LOCK, timeout=60)
    assert lock.acquire()
    assert jobs.settle_due(now) == []
    lock.release()
    assert jobs.settle_due(now) == ["2026-09"]
    assert jobs.settle_due(now + timedelta(days=1)) == ["2026-09"]
    with engine.connect() as conn:
        assert conn.execute(select(settlement_runs.c.state)).scalars().all() == ["done"]
        assert verify(conn) == []


def test_settlement_job_closes_an_empty_month_while_flattrs_arrive_in_the_current_one(
        worker_context, engine, hub_config):
    seed_github_users(engine, hub_config)
    inbox.store(engine, [like(n, when="2026-11-03T00:00:00+00:00") for n in range(3)])
    jobs.drain()
    assert jobs.settle_due(datetime(2026, 11, 5)) == ["2026-10"]
    with engine.connect() as conn:
        assert conn.execute(select(settlement_runs.c.month)).scalars().all() == ["2026-10"]
        assert conn.execute(select(func.count()).select_from(flattrs)
                            .where(flattrs.c.month == "2026-11")).scalar_one() == 3
        assert verify(conn) == []


def test_settlement_job_runs_from_its_queue(worker_context, redis):
    enqueue_settlement(redis)
    assert Queue("settlement", connection=redis).count == 1
    run_worker(worker_context, burst=True)
    assert Queue("settlement", connection=redis).count == 0
    assert FailedJobRegistry("settlement", connection=redis).count == 0


async def test_hub_deliveries_become_flattrs(hub_client, worker_context, engine, hub_config):
    seed_github_users(engine, hub_config)
    for repo in (7, 8, 7):
        body, headers = github_star(GITHUB_SECRET, sender=1, repo=repo, owner=2)
        assert (await hub_client.post("/webhooks/github", data=body, headers=headers)).status == 202
    body, headers = github_star(GITHUB_SECRET, sender=1, repo=8, owner=2, action="deleted")
    assert (await hub_client.post("/webhooks/github", data=body, headers=headers)).status == 202
    await hub_client.post("/webhooks/github", data=body, headers=headers)
    run_worker(worker_context, burst=True)
    assert pending(engine) == 0
    assert count(engine, events_table) == 4
    assert count(engine, flattrs, flattrs.c.retracted_at.is_(None)) == 1


def test_concurrent_workers_never_take_the_same_row(worker_context, engine, hub_config):
    """Two claimers at once (FOR UPDATE SKIP LOCKED on PostgreSQL, one writer on SQLite)."""
    from concurrent.futures import ThreadPoolExecutor

    seed_github_users(engine, hub_config)
    inbox.store(engine, [like(n) for n in range(400)])

    def work() -> int:
        done = 0
        while rows := jobs.process_batch(engine, 20, hub_config)[0]:
            done += rows
        return done

    with ThreadPoolExecutor(2) as pool:
        shares = [future.result() for future in [pool.submit(work), pool.submit(work)]]
    assert sum(shares) == 400
    assert (count(engine, flattrs), count(engine, events_table), pending(engine)) == (400, 400, 0)


def test_an_in_process_worker_leaves_the_signal_handlers_as_it_found_them(worker_context):
    """RQ installs SIGINT/SIGTERM handlers for its work loop; left behind, a process forked
    later (a multiprocessing pool) answered SIGTERM with StopRequested and its pool hung."""
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    run_worker(worker_context, burst=True)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
