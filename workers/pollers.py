"""Poller jobs on the `connectors` queue, spread over time.

Each linked account has a `next_poll_at`. Every `pollers.tick_seconds` the scheduler runs
`schedule_polls`, which takes, per platform whose poller is on, the accounts that are due —
at most as many as that platform's `requests_per_minute` allows in one tick, less the extra
pages earlier polls read (`tick_budget`), oldest due first — leases them (pushes
`next_poll_at` ahead so the next tick doesn't take them again while they wait in the queue)
and enqueues `poll_batch` jobs of `pollers.batch` accounts.
Job arguments are account ids only, never tokens. A poll records its changes in the inbox (see
`connectors.polling`) and the batch wakes the `events` queue, so polled likes take the same
path into the ledger as webhook deliveries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

import structlog
from redis import Redis
from rq import Retry
from sqlalchemy import Engine, select, update

from base import metrics
from base.config import Settings
from base.tables.connectors import poll_accounts
from connectors import registry
from connectors.poll_types import Poller
from connectors.polling import PollOutcome, poll_account
from ledger.sql import utcnow
from pipeline.context import current
from pipeline.queues import queue, wake

LEASE = timedelta(minutes=10)
POLL_TIMEOUT = 600
EXTRA_REQUESTS = "pollers:extra-requests:{platform}"

log = structlog.get_logger(__name__)


def poller_for(platform: str, config: Settings) -> Poller | None:
    """The poller of `platform`, None when it has none or it is off."""
    found = registry.BY_NAME.get(platform)
    if found is None or found.poller is None:
        return None
    poller: Poller | None = found.poller(config)
    return poller


def enabled_platforms(config: Settings) -> list[str]:
    """The platforms whose poller is configured on."""
    return [p.name for p in registry.polled() if poller_for(p.name, config) is not None]


def due_accounts(engine: Engine, platform: str, limit: int, now: datetime) -> list[int]:
    """Take up to `limit` due accounts of `platform` and lease them for LEASE."""
    with engine.begin() as conn:
        ids = list(conn.execute(
            select(poll_accounts.c.id)
            .where(poll_accounts.c.platform == platform, poll_accounts.c.state == "active",
                   poll_accounts.c.next_poll_at <= now)
            .order_by(poll_accounts.c.next_poll_at, poll_accounts.c.id).limit(limit)
            .with_for_update(skip_locked=True)).scalars())
        if ids:
            conn.execute(update(poll_accounts).where(poll_accounts.c.id.in_(ids))
                         .values(next_poll_at=now + LEASE))
    return ids


def per_tick(config: Settings, platform: str) -> int:
    """The platform's requests per minute over one tick: what one tick may spend."""
    rpm = config.connectors[platform].requests_per_minute or 60
    return max(1, rpm * config.pollers.tick_seconds // 60)


def owe_extra_requests(redis: Redis, platform: str, outcomes: Iterable[PollOutcome]) -> None:
    """Owe `tick_budget` the requests `outcomes` made beyond the one each poll was handed out
    for (later pages)."""
    if extra := sum(max(0, outcome.requests - 1) for outcome in outcomes):
        redis.incrby(EXTRA_REQUESTS.format(platform=platform), extra)


def tick_budget(redis: Redis, config: Settings, platform: str) -> int:
    """How many accounts this tick may hand out: a tick's requests, less the extra requests
    earlier polls made (paid from this tick's budget, the rest from the next ticks'), so that
    a platform's limit per key counts requests, not polls (Flickr: 3,600 an hour)."""
    allowed = per_tick(config, platform)
    key = EXTRA_REQUESTS.format(platform=platform)
    paid = min(int(redis.get(key) or 0), allowed)
    if paid:
        redis.decrby(key, paid)
    return allowed - paid


def schedule_polls(now: datetime | None = None) -> dict[str, int]:
    """Enqueue poll jobs for the accounts that are due; return how many per platform."""
    context = current()
    now = now or utcnow()
    batch = max(1, context.config.pollers.batch)
    handed: dict[str, int] = {}
    for platform in enabled_platforms(context.config):
        allowed = tick_budget(context.redis, context.config, platform)
        ids = due_accounts(context.engine, platform, allowed, now) if allowed else []
        for start in range(0, len(ids), batch):
            queue("connectors", context.redis).enqueue(
                "workers.pollers.poll_batch", platform, ids[start:start + batch],
                retry=Retry(max=2, interval=[30, 120]), job_timeout=POLL_TIMEOUT,
                result_ttl=600, description=f"poll {platform} likes")
        if ids:
            handed[platform] = len(ids)
    if handed:
        log.info("polls_scheduled", **handed)
    return handed


def poll_batch(platform: str, account_ids: list[int]) -> dict[str, int]:
    """Poll each account; wake the `events` queue if anything was recorded. The pages read
    beyond one per poll are owed to the scheduler's next ticks."""
    context = current()
    poller = poller_for(platform, context.config)
    totals: Counter[str] = Counter()
    if poller is None:
        return {}
    outcomes = [poll_account(context.engine, poller, account_id) for account_id in account_ids]
    for outcome in outcomes:
        totals[outcome.status] += 1
        totals["likes"] += outcome.likes
        totals["unlikes"] += outcome.unlikes
        totals["requests"] += outcome.requests
    owe_extra_requests(context.redis, platform, outcomes)
    if totals["likes"] or totals["unlikes"]:
        wake(context.redis)
    metrics.record_polls(platform, totals)
    return dict(totals)
