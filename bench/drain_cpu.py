"""Drain CPU benchmark (not a test): the CPU one batch loop of the worker costs per 1,000 inbox
events, in its own Python and in its PostgreSQL backend, and which statements take it.

On a machine shared with other jobs the events/s of `bench/ingest.py --only worker` follow the
share of the cores the worker gets; CPU time per event does much less, so this is the figure to
compare code by. It fills the inbox with the events of `bench/ingest.py` (distinct likes of
linked givers, each a new flattr), then runs `workers.jobs.process_batch` in this process, one
batch after the other on one connection (the worker runs `worker.drain_connections` such loops
at once), with the collector set as `flattr-hub worker` sets it. Python CPU is this process's
(`time.process_time`), the backend's is read from `/proc/<pid>/schedstat` (PostgreSQL on this
machine; with SQLite there is no backend). `--statements` adds each statement's wall time and
backend CPU (the measuring costs a little Python CPU itself).

    python bench/drain_cpu.py [--database-url postgresql://…] [--events 30000] [--batch 1000]
        [--statements]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from ingest import GIVERS, OWNERS, events  # bench/ingest.py, beside this file
from sqlalchemy import Connection, event, text

from base.db import upgrade
from connectors.registry import load_config
from ledger import accounts, identities
from ledger.db import make_engine
from ledger.schema import metadata
from pipeline import inbox
from workers.jobs import process_batch
from workers.worker import tune_collector


def fill(url: str, count: int) -> None:
    """An emptied, migrated database with the givers and owners of `bench/ingest.py` and
    `count` pending inbox events."""
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        if not url.startswith("sqlite"):
            names = ", ".join(table.name for table in metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            conn.execute(text("INSERT INTO ledger_clock (id) VALUES (1)"))
        for g in range(GIVERS):
            identities.link(conn, accounts.create_user(conn, f"giver{g}"), "github", str(g + 1))
        for o in range(OWNERS):
            identities.link(conn, accounts.create_user(conn, f"owner{o}"), "github",
                            str(100001 + o), claim=True)
    batch = events(count)
    for start in range(0, count, 5000):
        inbox.store(engine, [inbox.Entry(e, None) for e in batch[start:start + 5000]])
    engine.dispose()


class Backend:
    """The CPU time so far of the PostgreSQL backend serving `conn` (0 with SQLite)."""

    def __init__(self, conn: Connection) -> None:
        driver: Any = conn.connection.dbapi_connection
        self.stat = (Path(f"/proc/{driver.info.backend_pid}/schedstat")
                     if conn.dialect.name == "postgresql" else None)

    def seconds(self) -> float:
        return int(self.stat.read_text().split()[0]) / 1e9 if self.stat else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (emptied!)")
    parser.add_argument("--events", type=int, default=30000, help="inbox events (30000)")
    parser.add_argument("--batch", type=int, default=1000, help="batch size (1000)")
    parser.add_argument("--statements", action="store_true",
                        help="time each statement too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flattr-drain-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'drain.sqlite3'}"
        fill(url, args.events)
        engine = make_engine(url)
        config = load_config(environ={"FLATTR_DATABASE_URL": url})
        with engine.connect() as conn:  # the pool hands this connection to every batch
            backend = Backend(conn)
        wall: dict[str, float] = defaultdict(float)
        cpu: dict[str, float] = defaultdict(float)
        if args.statements:
            @event.listens_for(engine, "before_cursor_execute")
            def before(conn: Connection, *_: Any) -> None:
                conn.info["started"] = time.perf_counter(), backend.seconds()

            @event.listens_for(engine, "after_cursor_execute")
            def after(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
                started, used = conn.info["started"]
                name = " ".join(statement.split())[:80]
                wall[name] += time.perf_counter() - started
                cpu[name] += backend.seconds() - used

        tune_collector()
        total = 0
        started = time.perf_counter(), time.process_time(), backend.seconds()
        while rows := process_batch(engine, args.batch, config)[0]:
            total += rows
        elapsed, python, database = (now - then for now, then in zip(
            (time.perf_counter(), time.process_time(), backend.seconds()), started,
            strict=True))
        with engine.connect() as conn:
            if Backend(conn).stat != backend.stat:
                raise SystemExit("the pool changed connections: the backend's CPU is wrong")
        engine.dispose()
    per = 1000 / max(total, 1) * 1000
    kind = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(f"{total} events in batches of {args.batch} ({kind}), one loop, per 1,000 events: "
          f"Python {python * per:.1f} ms CPU, backend {database * per:.1f} ms CPU, "
          f"wall {elapsed * per:.1f} ms ({total / elapsed:.0f} events/s)")
    for name in sorted(wall, key=wall.__getitem__, reverse=True):
        print(f"  {wall[name] * per:6.2f} ms wall {cpu[name] * per:6.2f} ms backend  {name}")


if __name__ == "__main__":
    main()
