"""Parallel settlement: several processes (or workers' helper jobs) claim a run's chunks of
givers at once, and the ledger afterwards is exactly that of a one-process run."""

from __future__ import annotations

import threading
from datetime import datetime

from rq import Queue
from sqlalchemy import func, select

from ledger.schema import settlement_chunks, settlement_runs
from ledger.settlement import settle, settle_chunks
from ledger.verify import verify
from pipeline import inbox
from tests.hub_helpers import reinstall, seed_github_users
from tests.ledger_helpers import build_month, dump_ledger
from tests.test_settlement_faults import AFTER, clean_run
from tests.test_worker import like
from workers import jobs

pytest_plugins = ["tests.hub_fixtures"]

MONTH = "2026-06"


def test_two_participants_settle_exactly_like_one(tmp_path, engine, config):
    reference = clean_run(tmp_path, config, 60)
    build_month(engine, config, givers=60)
    both_settled_one = threading.Barrier(2, timeout=60)
    chunks: dict[str, int] = {"a": 0, "b": 0}
    errors: list[BaseException] = []

    def participant(name: str) -> None:
        def counted(_point: str) -> None:
            if _point == "chunk_committed":
                chunks[name] += 1
                if chunks[name] == 1:  # neither settles everything before the other starts
                    both_settled_one.wait()

        try:
            settle(engine, MONTH, config.money, now=AFTER, fault=counted)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=participant, args=(name,)) for name in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert chunks["a"] >= 1 and chunks["b"] >= 1
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(settlement_chunks)).scalar_one()
        assert chunks["a"] + chunks["b"] == total > 2  # each chunk settled once
        assert conn.execute(select(settlement_runs.c.state)).scalar_one() == "done"
        assert verify(conn) == []
    assert dump_ledger(engine) == reference


def test_helper_jobs_settle_chunks_and_the_run_finishes_it(tmp_path, engine, config):
    reference = clean_run(tmp_path, config, 30)
    build_month(engine, config, givers=30)
    helped: list[int] = []

    def helper_settles_all() -> None:  # a helper that runs before the run's own loop
        helped.append(settle_chunks(engine, MONTH, config.money))

    summary = settle(engine, MONTH, config.money, now=AFTER, planned=helper_settles_all)
    assert summary.state == "done"
    assert helped[0] > 1
    assert settle_chunks(engine, MONTH, config.money) == 0  # nothing left to help with
    assert dump_ledger(engine) == reference
    with engine.connect() as conn:
        assert verify(conn) == []


def test_a_helper_before_the_run_is_planned_does_nothing(engine, config):
    build_month(engine, config, givers=5)
    assert settle_chunks(engine, MONTH, config.money) == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(settlement_runs)).scalar() == 0


def test_settlement_job_queues_helper_jobs_that_find_the_run_done(worker_context, engine,
                                                                   hub_config, redis):
    reinstall(worker_context, {"settlement.jobs": 3})
    seed_github_users(engine, hub_config)
    inbox.store(engine, [like(n, when="2026-09-10T00:00:00+00:00") for n in range(3)])
    jobs.drain()
    assert jobs.settle_due(datetime(2026, 10, 1, 1, 0)) == ["2026-09"]
    helpers = Queue("settlement", connection=redis).jobs
    assert [(job.func_name, job.args) for job in helpers] == [
        ("workers.jobs.settle_help", ("2026-09",))] * 2
    assert [jobs.settle_help("2026-09") for _ in helpers] == [0, 0]  # run alone: all done
    with engine.connect() as conn:
        assert verify(conn) == []
