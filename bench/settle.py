"""Settlement benchmark: generate a month, settle it with `flattr-hub settle` in a child
process, and compare with copying that month's flattrs once (INSERT … SELECT) on the same
database.

    python bench/settle.py --givers 100000 --flattrs-per-giver 10
    python bench/settle.py --givers 1000000 --flattrs-per-giver 10 \
        --database-url postgresql://postgres@127.0.0.1:5432/bench [--processes 2]

The database named by --database-url is emptied first: point it at a scratch database.
Creators number givers / 50 (at least 100), with 5 things each; every giver is funded and
flattrs K distinct things spread over all creators.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, MetaData

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from base.db import upgrade
from ledger.db import make_engine

MONTH = "2026-06"
THINGS_PER_CREATOR = 5
FUNDS = 5000


def reset(url: str) -> Engine:
    engine = make_engine(url)
    existing = MetaData()
    existing.reflect(engine)
    existing.drop_all(engine)
    upgrade(url)
    return engine


def series(engine: Engine, count: str) -> str:
    """A CTE `s(g)` of the integers 1..count, on either backend."""
    if engine.dialect.name == "postgresql":
        return f"WITH s(g) AS (SELECT generate_series(1, {count}))"
    return f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {count})"


def generate(engine: Engine, givers: int, per_giver: int) -> None:
    creators = max(100, givers // 50)
    users = givers + creators
    things = creators * THINGS_PER_CREATOR
    pg = engine.dialect.name == "postgresql"
    moment = ("TIMESTAMP '2026-06-01' + ((g * 7 + k * 13) % 2419200) * INTERVAL '1 second'"
              if pg else
              "datetime('2026-06-01', '+' || ((g * 7 + k * 13) % 2419200) || ' seconds')")
    now = "CURRENT_TIMESTAMP"
    statements = [
        f"{series(engine, users)} INSERT INTO users (id, name, budget, created_at) "
        f"SELECT g, 'u' || g, CASE WHEN g <= {givers} THEN 500 ELSE 200 END, {now} FROM s",
        f"{series(engine, users)} INSERT INTO accounts (id, name, user_id, kind, balance) "
        f"SELECT 2 * g - 1, 'user:' || g || ':funds', g, 'funds', {FUNDS} FROM s",
        f"{series(engine, users)} INSERT INTO accounts (id, name, user_id, kind, balance) "
        f"SELECT 2 * g, 'user:' || g || ':revenue', g, 'revenue', 0 FROM s",
        f"INSERT INTO accounts (id, name, kind, balance) "
        f"VALUES ({2 * users + 1}, 'incoming:bench', 'system', {-FUNDS * users})",
        f"{series(engine, users)} INSERT INTO transfers "
        f"(debit_id, credit_id, amount, reason, idempotency_key, created_at) "
        f"SELECT {2 * users + 1}, 2 * g - 1, {FUNDS}, 'bench', 'bench:' || g, {now} FROM s",
        f"{series(engine, creators)} INSERT INTO identities "
        f"(id, platform, platform_user_id, linked_user_id, flattr_enabled, claimed_by, "
        f"claimed_at) SELECT g, 'github', 'c' || g, {givers} + g, TRUE, {givers} + g, {now} "
        f"FROM s",
        f"{series(engine, things)} INSERT INTO things "
        f"(id, platform, content_id, owner_identity_id, created_at) "
        f"SELECT g, 'github', 'r' || g, (g - 1) / {THINGS_PER_CREATOR} + 1, {now} FROM s",
        f"{series(engine, givers)}, k(k) AS MATERIALIZED (SELECT g - 1 FROM s "
        f"WHERE g <= {per_giver}) "
        f"INSERT INTO flattrs (giver_id, thing_id, month, occurred_at, source_event_id) "
        f"SELECT g, (g + k * 7919) % {things} + 1, '{MONTH}', {moment}, 'e' || g || '-' || k "
        f"FROM s CROSS JOIN k ORDER BY g, k",
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement.replace("%", "%%") if pg else statement)
    if pg:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        with engine.begin() as conn:
            for table, column in (("users", "id"), ("accounts", "id"), ("identities", "id"),
                                  ("things", "id")):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', "
                                     f"'{column}'), (SELECT max({column}) FROM {table}))")


def copy_time(engine: Engine, *, with_indexes: bool) -> float:
    """Seconds to copy the month's flattrs once into a table like `flattrs` (with or without
    its indexes) by INSERT … SELECT."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            including = " INCLUDING ALL" if with_indexes else ""
            conn.exec_driver_sql(f"CREATE TABLE flattrs_copy (LIKE flattrs{including})")
        else:
            conn.exec_driver_sql("CREATE TABLE flattrs_copy AS SELECT * FROM flattrs WHERE 0")
            indexes = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'flattrs' "
                "AND sql IS NOT NULL").scalars().all() if with_indexes else []
            for sql in indexes:
                conn.exec_driver_sql(sql.replace("INDEX ", "INDEX copy_", 1)
                                     .replace(" ON flattrs ", " ON flattrs_copy "))
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO flattrs_copy SELECT * FROM flattrs "
                             f"WHERE month = '{MONTH}'")
    elapsed = time.perf_counter() - start
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE flattrs_copy")
    return elapsed


def settle_in_children(url: str, batch: int, processes: int) -> tuple[float, float, str]:
    """Run `flattr-hub settle` in `processes` child processes at once (they share the run's
    chunks); the seconds until all have finished, the largest child's peak RSS, and what the
    first one printed."""
    env = {**os.environ, "FLATTR_DATABASE_URL": url, "FLATTR_CONFIG": os.devnull,
           "FLATTR_SETTLEMENT__BATCH_GIVERS": str(batch)}
    start = time.perf_counter()
    children = [subprocess.Popen([sys.executable, "-m", "flattr_hub.cli", "settle", MONTH],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(processes)]
    outputs = [child.communicate() for child in children]
    elapsed = time.perf_counter() - start
    for child, (_, err) in zip(children, outputs, strict=True):
        if child.returncode:
            raise SystemExit(f"settle failed: {err.strip()}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, peak_mib, outputs[0][0].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--givers", type=int, default=10000)
    parser.add_argument("--flattrs-per-giver", type=int, default=10)
    parser.add_argument("--database-url", help="a scratch database (emptied first); "
                        "default: a temporary SQLite file")
    parser.add_argument("--batch-givers", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=1,
                        help="settle processes sharing the run's chunks (1)")
    parser.add_argument("--verify", action="store_true", help="run ledger verify afterwards")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{Path(scratch.name) / 'bench.sqlite3'}"
    engine = reset(url)
    start = time.perf_counter()
    generate(engine, args.givers, args.flattrs_per_giver)
    generated = time.perf_counter() - start
    flattrs = args.givers * args.flattrs_per_giver
    copy = copy_time(engine, with_indexes=False)
    indexed_copy = copy_time(engine, with_indexes=True)
    elapsed, peak, report = settle_in_children(url, args.batch_givers, args.processes)
    print(f"backend            {engine.dialect.name}")
    print(f"givers x flattrs   {args.givers} x {args.flattrs_per_giver} = {flattrs}")
    print(f"generate month     {generated:.1f} s")
    print(f"copy flattrs once  {copy:.2f} s bare, {indexed_copy:.2f} s with flattrs' indexes "
          "(INSERT … SELECT)")
    print(f"settle             {elapsed:.2f} s, {args.processes} process(es)  ({report})")
    print(f"throughput         {flattrs / elapsed:,.0f} flattrs/s")
    print(f"settle / copy      {elapsed / copy:.1f}x bare copy, "
          f"{elapsed / indexed_copy:.1f}x indexed copy")
    print(f"peak RSS (settle)  {peak:.0f} MiB (largest process)")
    print("load average       {:.2f} {:.2f} {:.2f} (1, 5, 15 min; the machine may be shared)"
          .format(*os.getloadavg()))
    if args.verify:
        from ledger.verify import verify

        with engine.connect() as conn:
            problems = verify(conn)
        print("ledger verify      " + ("all invariants hold" if not problems else
                                       "; ".join(problems[:5])))
    engine.dispose()


if __name__ == "__main__":
    main()
