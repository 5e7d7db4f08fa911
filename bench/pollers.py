"""Poller benchmark (not a test): one full round over many linked accounts against a local fake
API that enforces a rate limit, with the real poller code (`connectors.polling`,
`workers.pollers.due_accounts`) and the real SoundCloud poller (requests, `next_href`).

Setup: `--accounts` users (default 10,000), each with a linked SoundCloud account holding a few
liked tracks and a baseline already taken; `--changed` percent of them liked something new
since. The fake (127.0.0.1 only) allows `--rate` requests per second app-wide and answers 429
with a reset header beyond that.

The round: every account is due. Each tick (one second) hands out as many accounts as the
platform's pace allows (`requests_per_minute` = 90 % of the fake's limit, as configured for
production), leases them, and `--workers` threads (standing in for RQ workers) poll them, each
poll diffing and writing its events to the inbox in one transaction. The round is over when
every account has been polled once after it started. `--unpaced` hands out every due account at
once instead, to show what the pacing saves. Bounded by `--timeout` seconds.

Prints: round time, requests per second, 429s hit, likes recorded. Run:
`python bench/pollers.py [--accounts 10000] [--rate 100] [--workers 4] [--unpaced]`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog
from cryptography.fernet import Fernet
from sqlalchemy import Engine, func, insert, select, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from base.config import Settings, with_overrides
from base.db import upgrade
from base.tables.connectors import poll_accounts, poll_seen
from base.vault import Vault
from connectors.polling import poll_account
from connectors.registry import default_config
from connectors.soundcloud import SoundCloudPoller
from ledger.db import make_engine
from ledger.schema import accounts as accounts_table
from ledger.schema import identities, users
from ledger.sql import utcnow
from pipeline import inbox
from tests.fakes.platforms import FakeSoundCloud, track
from tests.fakes.server import serve
from workers.pollers import due_accounts, per_tick

VAULT = Vault(Fernet.generate_key())  # a key for this run only


def seed(engine: Engine, fake: FakeSoundCloud, count: int, changed: float, vault: Vault) -> None:
    """Users, linked identities, poll accounts with a baseline, and the fake's liked lists."""
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(users), [{"name": f"b{n}", "created_at": now} for n in range(count)])
        ids = dict(conn.execute(select(users.c.name, users.c.id)).all())
        conn.execute(insert(accounts_table), [
            {"name": f"user:{ids[f'b{n}']}:{kind}", "user_id": ids[f"b{n}"], "kind": kind}
            for n in range(count) for kind in ("funds", "revenue")])
        conn.execute(insert(identities), [
            {"platform": "soundcloud", "platform_user_id": f"soundcloud:users:{n}",
             "linked_user_id": ids[f"b{n}"], "flattr_enabled": True} for n in range(count)])
        conn.execute(insert(poll_accounts), [
            {"platform": "soundcloud", "instance": "", "platform_user_id": f"soundcloud:users:{n}",
             "remote_id": f"soundcloud:users:{n}", "access_token": vault.seal(f"tok-{n}"),
             "state": "active",
             "next_poll_at": now, "baseline_done": True, "window_requests": 0, "failures": 0,
             "created_at": now} for n in range(count)])
        account_ids = dict(conn.execute(select(poll_accounts.c.platform_user_id,
                                               poll_accounts.c.id)).all())
        seen_rows = []
        for n in range(count):
            likes = [track(n * 10 + k, 1_000_000 + (n + k) % 500) for k in range(3)]
            fake.add_user(f"soundcloud:users:{n}", f"tok-{n}", likes=likes)
            seen_rows += [{"account_id": account_ids[f"soundcloud:users:{n}"],
                           "content_id": t["urn"], "owner_id": t["user"]["urn"],
                           "first_seen_at": now} for t in likes]
        conn.execute(insert(poll_seen), seen_rows)
    step = max(1, round(100 / changed)) if changed else 0
    for n in range(0, count, step or count + 1):
        fake.likes[f"soundcloud:users:{n}"].insert(0, track(10**9 + n, 1_000_001))


def run_round(engine: Engine, poller: SoundCloudPoller, config: Settings, workers: int,
              unpaced: bool, timeout: float) -> tuple[float, int]:
    """Poll every account once; return (seconds, ticks)."""
    start = utcnow()
    with engine.begin() as conn:
        conn.execute(update(poll_accounts).values(next_poll_at=start))
        total = conn.execute(select(func.count()).select_from(poll_accounts)).scalar_one()
    began = time.monotonic()
    ticks = 0
    limit = total if unpaced else per_tick(config, "soundcloud")
    with ThreadPoolExecutor(workers) as pool:
        while time.monotonic() - began < timeout:
            tick_started = time.monotonic()
            ticks += 1
            ids = due_accounts(engine, "soundcloud", limit, utcnow())
            list(pool.map(lambda account: poll_account(engine, poller, account), ids))
            with engine.connect() as conn:
                done = conn.execute(select(func.count()).select_from(poll_accounts).where(
                    poll_accounts.c.last_polled_at >= start)).scalar_one()
            if done >= total:
                break
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick_started)))  # one tick a second
    return time.monotonic() - began, ticks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100, help="fake API limit, requests/s")
    parser.add_argument("--workers", type=int, default=4, help="polling threads")
    parser.add_argument("--changed", type=float, default=10, help="percent with a new like")
    parser.add_argument("--unpaced", action="store_true", help="hand out all due accounts")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
        upgrade(url)
        engine = make_engine(url)
        fake = FakeSoundCloud(page_size=50, app_per_second=args.rate)
        config = with_overrides(default_config(), {
            "pollers.tick_seconds": 1,
            "connectors.soundcloud.requests_per_minute": int(args.rate * 60 * 0.9)})
        t0 = time.monotonic()
        seed(engine, fake, args.accounts, args.changed, VAULT)
        print(f"seeded {args.accounts} linked accounts in {time.monotonic() - t0:.1f} s")
        with serve(fake.app()) as api:
            poller = SoundCloudPoller("bench", "bench", api_base=api, vault=VAULT)
            seconds, ticks = run_round(engine, poller, config, args.workers, args.unpaced,
                                       args.timeout)
        with engine.connect() as conn:
            done = conn.execute(select(func.count()).select_from(poll_accounts).where(
                poll_accounts.c.last_polled_at.is_not(None))).scalar_one()
            events = inbox.pending_count(conn)
        engine.dispose()
    requests = fake.stats["requests"] + fake.stats["429"]
    mode = "unpaced" if args.unpaced else (
        f"paced at {config.connectors['soundcloud'].requests_per_minute}/min")
    print(f"round ({mode}, {args.workers} workers, fake limit {args.rate:g} req/s): "
          f"{done}/{args.accounts} accounts polled in {seconds:.1f} s over {ticks} ticks")
    print(f"requests: {requests} ({requests / seconds:.0f}/s), served {fake.stats['requests']} "
          f"({fake.stats['requests'] / seconds:.0f}/s), 429s hit: {fake.stats['429']}")
    print(f"likes recorded in the inbox: {events}")
    return 0 if done == args.accounts else 1


if __name__ == "__main__":
    sys.exit(main())
