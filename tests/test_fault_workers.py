"""Fault test of worker scale-out: two workers drain one inbox on PostgreSQL and a Redis server,
and one of them is SIGKILLed mid-stream. Their claims skip each other's rows (`FOR UPDATE SKIP
LOCKED`), the killed worker's open batch rolls back and is drained by the other, and afterwards
every acknowledged event is recorded exactly once and the ledger self-check holds.

SQLite serialises writers (one worker at a time by design), so the test runs on PostgreSQL
only. Run alone with `pytest -m fault`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_fault_durability import (
    EVENTS,
    Processes,
    assert_counted_once,
    deliveries,
    pending,
    reader,
    seed,
    send,
    wait_for,
)

pytestmark = pytest.mark.fault


class TwoWorkers(Processes):
    """The test's Redis server, a hub and two workers, each with its own log."""

    def __init__(self, tmp: Path, db_url: str) -> None:
        super().__init__(tmp, db_url)
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_workers(self) -> None:
        for n in range(2):
            log = open(self.tmp / f"worker{n}.log", "ab")  # noqa: SIM115 (closed with it)
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "flattr_hub.cli", "worker"], env=self.env,
                stdout=log, stderr=log, start_new_session=True))

    def batches(self, n: int) -> int:
        """How many batches worker `n` has recorded, from its log."""
        path = self.tmp / f"worker{n}.log"
        return path.read_text().count("inbox_batch_recorded") if path.exists() else 0

    def kill(self, n: int) -> None:
        os.killpg(self.workers[n].pid, signal.SIGKILL)  # the worker and RQ's scheduler
        self.workers[n].wait()

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        super().stop()


def test_two_workers_one_killed_mid_stream_count_every_event_once(tmp_path, db_url, engine,
                                                                   config):
    if not db_url.startswith("postgresql"):
        pytest.skip("concurrent workers need PostgreSQL (SQLite takes one writer at a time)")
    if not shutil.which("redis-server"):
        pytest.skip("needs a redis-server binary (workers share a Redis server)")
    seed(engine, config)
    processes = TwoWorkers(tmp_path, db_url)
    acknowledged: set[str] = set()
    stream = deliveries()
    poll = reader(db_url)
    try:
        processes.start_redis()
        processes.start_hub()
        processes.start_workers()

        async def stream_with_a_kill() -> tuple[int, int, int]:
            # The last third is sent only after the kill, so the kill is always mid-stream.
            held_back = len(stream) // 3
            load = asyncio.create_task(send(processes.hub_port, stream[:-held_back],
                                            acknowledged))
            await asyncio.to_thread(wait_for, lambda: max(processes.batches(0),
                                                          processes.batches(1)) >= 2,
                                    "a worker draining", 60)
            victim = 0 if processes.batches(0) >= processes.batches(1) else 1
            processes.kill(victim)
            killed = (victim, processes.batches(victim), len(acknowledged))
            await load
            await send(processes.hub_port, stream[-held_back:], acknowledged)
            return killed

        victim, killed_after, acknowledged_before_kill = asyncio.run(stream_with_a_kill())
        wait_for(lambda: pending(poll) == 0, "the inbox to drain", 60)
    finally:
        processes.stop()
        poll.dispose()

    assert killed_after >= 2 and processes.batches(1 - victim) >= 1  # both drained
    assert acknowledged_before_kill < EVENTS  # killed mid-stream
    assert_counted_once(engine, acknowledged)
