"""Fault test of the durability promise: a 2xx means counted exactly once.

Thousands of signed GitHub stars go to a hub subprocess while the worker subprocess is killed
with SIGKILL several times (each time while it is draining a backlog), the test's own Redis
server is restarted empty once, and the hub itself is SIGKILLed and restarted once. Afterwards
every acknowledged event is recorded exactly once, nothing else is, and the ledger self-check
holds. Run alone with `pytest -m fault`.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from redis import Redis
from sqlalchemy import Engine, create_engine, func, select

from base.config import Settings
from hub.simulate import github_star
from ledger import accounts, identities
from ledger.schema import events, flattrs
from ledger.verify import verify
from pipeline import inbox
from tests.hub_helpers import GITHUB_SECRET

pytestmark = pytest.mark.fault

GIVERS, OWNERS, REPOS_PER_OWNER = 60, 20, 10
EVENTS = 3000
REDELIVERED = 150


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """The processes of the test: its own Redis server, the hub and the worker."""

    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp = tmp
        self.redis_port = free_port()
        self.hub_port = free_port()
        self.env = dict(
            os.environ, FLATTR_DATABASE_URL=db_url, FLATTR_DATA_DIR=str(tmp / "var"),
            FLATTR_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            FLATTR_CONNECTORS__GITHUB__WEBHOOK_SECRET=GITHUB_SECRET,
            FLATTR_WORKER__BATCH_SIZE="50", FLATTR_WORKER__SWEEP_SECONDS="2",
            PYTHONUNBUFFERED="1")
        self.env.pop("FLATTR_CONFIG", None)
        self.redis: subprocess.Popen[bytes] | None = None
        self.hub: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.worker_kills = 0

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.redis_port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, cwd=self.tmp)
        wait_for(lambda: _connects(self.redis_port), "redis")

    def restart_redis_empty(self) -> None:
        assert self.redis
        self.redis.kill()
        self.redis.wait()
        self.start_redis()

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{args[0]}.log", "ab")  # noqa: SIM115 (closed with the process)
        return subprocess.Popen([sys.executable, "-m", "flattr_hub.cli", *args], env=self.env,
                                stdout=log, stderr=log, start_new_session=True)

    def start_hub(self) -> None:
        self.hub = self._spawn("serve", "--port", str(self.hub_port))
        wait_for(lambda: _connects(self.hub_port), "hub")

    def kill_hub(self) -> None:
        assert self.hub
        os.killpg(self.hub.pid, signal.SIGKILL)
        self.hub.wait()

    def start_worker(self) -> None:
        self.worker = self._spawn("worker")

    def kill_worker(self) -> None:
        assert self.worker
        os.killpg(self.worker.pid, signal.SIGKILL)  # the worker and RQ's scheduler process
        self.worker.wait()
        self.worker_kills += 1

    def describe(self) -> str:
        redis = Redis(port=self.redis_port)
        worker = self.worker.poll() if self.worker else "none"
        return (f"worker exit {worker}, events queue {redis.llen('rq:queue:events')}, "
                f"keys {sorted(k.decode() for k in redis.keys('*'))[:12]}")

    def stop(self) -> None:
        for process in (self.worker, self.hub):
            if process and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.redis and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait()


def _connects(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {seconds} s")
        time.sleep(0.01)


def seed(engine: Engine, config: Settings) -> None:
    with engine.begin() as conn:
        for g in range(GIVERS):
            uid = accounts.create_user(conn, f"giver{g}")
            accounts.set_budget(conn, uid, 500, config.money)
            accounts.credit_funds(conn, uid, 1000, "test", f"fault:giver{g}")
            identities.link(conn, uid, "github", str(g + 1))
        for o in range(OWNERS):
            uid = accounts.create_user(conn, f"owner{o}")
            identities.link(conn, uid, "github", str(1001 + o), claim=True)


def deliveries() -> list[tuple[str, bytes, dict[str, str]]]:
    """EVENTS distinct (giver, repository) stars, and REDELIVERED of them sent a second time."""
    rng = random.Random(3)
    pairs = rng.sample([(g, o, r) for g in range(GIVERS) for o in range(OWNERS)
                        for r in range(REPOS_PER_OWNER)], EVENTS)
    sent = []
    for n, (g, o, r) in enumerate(pairs):
        body, headers = github_star(GITHUB_SECRET, sender=g + 1, repo=(o + 1) * 1000 + r,
                                    owner=1001 + o, delivery=f"fault-{n}")
        sent.append((f"fault-{n}", body, headers))
    return sent + rng.sample(sent, REDELIVERED)



def assert_counted_once(engine: Engine, acknowledged: set[str]) -> None:
    """Every delivery was acknowledged, each is recorded exactly once, one flattr each, and the
    ledger's self-check holds."""
    assert acknowledged == {f"fault-{n}" for n in range(EVENTS)}
    with engine.connect() as conn:
        recorded = conn.execute(select(events.c.event_id, func.count())
                                .group_by(events.c.event_id)).all()
        assert {event_id for event_id, _ in recorded} == acknowledged
        assert all(n == 1 for _, n in recorded)
        assert conn.execute(select(func.count()).select_from(flattrs)).scalar() == EVENTS
        assert verify(conn) == []


async def send(port: int, batch: list[tuple[str, bytes, dict[str, str]]],
               acknowledged: set[str], concurrency: int = 8) -> None:
    """Post every delivery; like GitHub's redelivery, retry one that got no 2xx."""
    queue: asyncio.Queue[tuple[str, bytes, dict[str, str]]] = asyncio.Queue()
    for item in batch:
        queue.put_nowait(item)

    async def sender(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            delivery, body, headers = queue.get_nowait()
            for _ in range(600):
                try:
                    async with session.post(f"http://127.0.0.1:{port}/webhooks/github",
                                            data=body, headers=headers) as response:
                        if response.status == 202:
                            acknowledged.add(delivery)
                            break
                        assert response.status >= 500, response.status
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"delivery {delivery} was never acknowledged")

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(*(sender(session) for _ in range(concurrency)))


def pending(engine: Engine) -> int:
    with engine.connect() as conn:
        return inbox.pending_count(conn)


def reader(db_url: str) -> Engine:
    """An engine whose reads take no write lock (plain deferred transactions), so that polling
    does not slow the worker down on SQLite."""
    return create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))


def test_acknowledged_events_survive_kills_and_an_empty_redis(tmp_path, db_url, engine, config):
    seed(engine, config)
    processes = Processes(tmp_path, db_url)
    acknowledged: set[str] = set()
    all_deliveries = deliveries()
    first, second, third = (all_deliveries[:2250], all_deliveries[2250:2850],
                            all_deliveries[2850:])
    killed_mid_backlog = 0
    poll = reader(db_url)
    started = time.monotonic()
    try:
        processes.start_redis()
        processes.start_hub()
        for n in range(3):  # a backlog, then kill the worker as soon as it is seen draining it
            asyncio.run(send(processes.hub_port, first[n * 750:(n + 1) * 750], acknowledged))
            before = pending(poll)
            processes.start_worker()
            wait_for(lambda b=before: pending(poll) < b,
                     f"worker progress ({processes.describe()})", 60)
            processes.kill_worker()
            killed_mid_backlog += pending(poll) > 0

        async def second_phase() -> None:
            load = asyncio.create_task(send(processes.hub_port, second, acknowledged))
            await asyncio.sleep(0.5)
            processes.restart_redis_empty()
            await asyncio.sleep(0.5)
            processes.kill_worker()
            processes.start_worker()
            await load

        processes.start_worker()
        asyncio.run(second_phase())

        async def third_phase() -> None:
            load = asyncio.create_task(send(processes.hub_port, third, acknowledged))
            await asyncio.sleep(0.3)
            processes.kill_hub()
            await asyncio.sleep(0.3)
            await asyncio.get_running_loop().run_in_executor(None, processes.start_hub)
            await load

        asyncio.run(third_phase())
        wait_for(lambda: pending(poll) == 0, "the inbox to drain", 60)
    finally:
        processes.stop()
        poll.dispose()

    assert processes.worker_kills == 4
    assert killed_mid_backlog >= 2
    assert_counted_once(engine, acknowledged)
    assert time.monotonic() - started < 90
