"""Shared poller logic: read a linked account's likes, diff them against what was seen before
(`connectors.poll_diff`), and record the changes as normalised events in the inbox (the same
path as webhooks). The accounts are stored by `connectors.poll_storage`; the types pollers use
are in `connectors.poll_types`, their HTTP helpers in `connectors.poll_http`.

A platform poller is a small object (see `Poller`) whose `fetch` reads one snapshot of an
account's likes within a request budget and raises `RateLimited`, `TokenExpired` or
`TransientError`; everything else is here:

- **Diff** (`connectors.poll_diff`): new items are likes (dated by the platform when it says
  when: `Item.liked_at`), vanished ones unlikes. The first
  poll of an account records a baseline and emits nothing (the platforms say nothing of when
  the old likes happened).
- **Atomicity.** The seen rows, the inbox rows and the account's schedule change in one
  transaction; the queue is woken after it commits.
- **Limits.** A per-account request window (`window_requests` per `window_seconds`) is kept
  in the account row; on 429 the account waits until the platform's reset time.
- **Tokens** are stored sealed with the token vault (`base.vault.Vault`, which each poller
  carries) and opened only to make a request, and so is an OAuth 1.0a platform's (Flickr's)
  token secret. An expired or rejected token is refreshed once (the new refresh token is
  stored at once: SoundCloud's and X's are single-use); if that fails the account is marked
  `relink` and is not polled again until the user links it anew; so is one whose stored
  tokens the vault cannot open (`web.token_key` changed). Errors back off exponentially.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine

from connectors.poll_diff import diff, events_for, in_view, valid_items
from connectors.poll_storage import load_account, record_seen, sealed, seen_items, set_account
from connectors.poll_types import Account, Poller, PollError, RateLimited, Snapshot, TokenExpired
from ledger.sql import utcnow
from pipeline import inbox

log = structlog.get_logger(__name__)

MAX_BACKOFF = timedelta(hours=6)
SLEEP_WHILE_OFF = 3600  # an account whose flattring is off is looked at again after this


@dataclass(frozen=True, slots=True)
class PollOutcome:
    account_id: int
    status: str  # polled | baseline | rate_limited | relink | error | window_full | skipped
    likes: int = 0
    unlikes: int = 0
    requests: int = 0


def _window(poller: Poller, account: Account, now: datetime) -> tuple[datetime, int]:
    """(window start, requests already made in it) for the per-account rate window."""
    start = account.window_started_at
    if start is None or now >= start + timedelta(seconds=poller.window_seconds):
        return now, 0
    return start, account.window_requests


def _jitter(seconds: float) -> timedelta:
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))


def _backoff(poller: Poller, failures: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=poller.poll_seconds * 2 ** min(failures, 10)) / 4)


def poll_account(engine: Engine, poller: Poller, account_id: int,
                 now: datetime | None = None) -> PollOutcome:
    """Poll one account and record what changed. Never raises for platform trouble: the
    account's schedule records the outcome (backoff, rate limit, relink)."""
    now = now or utcnow()
    try:
        with engine.connect() as conn:
            account, enabled = load_account(conn, account_id, poller.vault)
    except ValueError:
        _relink(engine, account_id, "the stored token cannot be decrypted with web.token_key")
        return PollOutcome(account_id, "relink")
    if account is None or account.platform != poller.platform:
        return PollOutcome(account_id, "skipped")
    if not enabled:
        # flattring is off: don't poll; take a fresh baseline once it is on again, so that
        # what was liked meanwhile doesn't become flattrs
        with engine.begin() as conn:
            set_account(conn, account.id, baseline_done=False,
                    next_poll_at=now + timedelta(seconds=SLEEP_WHILE_OFF))
        return PollOutcome(account_id, "skipped")
    start, used = _window(poller, account, now)
    budget = poller.window_requests - used
    if budget <= 0:
        with engine.begin() as conn:
            set_account(conn, account.id, next_poll_at=start + timedelta(
                seconds=poller.window_seconds))
        return PollOutcome(account.id, "window_full")
    try:
        fetched = _fetch(engine, poller, account, budget)
    except TokenExpired:
        _relink(engine, account.id, "the platform refused the refreshed token")
        return PollOutcome(account.id, "relink")
    except RateLimited as exc:
        # the platform's reset time (never sooner than now), else backoff; the jitter keeps
        # accounts limited together from all coming back at the same instant
        wait_until = (max(exc.reset_at, now) if exc.reset_at is not None
                      else now + _backoff(poller, account.failures + 1))
        with engine.begin() as conn:
            set_account(conn, account.id, next_poll_at=wait_until + _jitter(5),
                    window_started_at=start, window_requests=used + exc.requests_made,
                    last_error="rate limited (429)")
        log.info("poll_rate_limited", platform=poller.platform, account=account.id,
                 until=wait_until.isoformat())
        return PollOutcome(account.id, "rate_limited", requests=exc.requests_made)
    except PollError as exc:
        failures = account.failures + 1
        with engine.begin() as conn:
            set_account(conn, account.id, failures=failures, last_error=str(exc)[:255],
                    next_poll_at=now + _backoff(poller, failures))
        log.warning("poll_failed", platform=poller.platform, account=account.id,
                    error=str(exc)[:200], failures=failures)
        return PollOutcome(account.id, "error")
    if fetched is None:
        return PollOutcome(account_id, "relink")
    account, snapshot = fetched
    return record(engine, poller, account, snapshot, now, start, used)


def _fetch(engine: Engine, poller: Poller, account: Account,
           budget: int) -> tuple[Account, Snapshot] | None:
    """`poller.fetch`, with the account as it is after the fetch: when the platform says the
    token expired, refreshed once and fetched again; None when it could not be refreshed."""
    try:
        return account, poller.fetch(account, budget)
    except TokenExpired:
        refreshed = _refresh(engine, poller, account)
        if refreshed is None:
            return None
        return refreshed, poller.fetch(refreshed, budget)


def record(engine: Engine, poller: Poller, account: Account, snapshot: Snapshot,
           now: datetime, window_start: datetime, window_used: int) -> PollOutcome:
    """Diff `snapshot` against the seen rows and store the result in one transaction."""
    with engine.begin() as conn:
        seen = seen_items(conn, account.id)
        checked = Snapshot(valid_items(account, snapshot, now), snapshot.complete,
                           snapshot.requests, snapshot.newest_first)
        new, gone = diff(seen, checked)
        new, older = in_view(seen, checked, new)
        record_seen(conn, account.id, new + older, gone, now)
        emitted = events_for(account, new, gone, now) if account.baseline_done else []
        inbox.append(conn, [inbox.Entry(event, None) for event in emitted])
        set_account(conn, account.id, baseline_done=True, last_polled_at=now, failures=0,
                last_error=None, window_started_at=window_start,
                window_requests=window_used + snapshot.requests,
                next_poll_at=now + _jitter(poller.poll_seconds))
    likes = sum(e.kind == "like" for e in emitted)
    return PollOutcome(account.id, "polled" if account.baseline_done else "baseline",
                       likes=likes, unlikes=len(emitted) - likes, requests=snapshot.requests)


def _refresh(engine: Engine, poller: Poller, account: Account) -> Account | None:
    """Refresh the token once and store the new pair at once; None (and `relink`) if that
    is not possible."""
    try:
        tokens = poller.refresh(account)
    except TokenExpired:
        tokens = None
    if tokens is None:
        _relink(engine, account.id, "token expired and could not be refreshed")
        return None
    with engine.begin() as conn:
        set_account(conn, account.id, **sealed(poller.vault, tokens.access_token,
                                           tokens.refresh_token or account.refresh_token,
                                           tokens.expires_at))
    log.info("token_refreshed", platform=account.platform, account=account.id)
    return Account(account.id, account.platform, account.instance, account.platform_user_id,
                   account.remote_id, tokens.access_token,
                   tokens.refresh_token or account.refresh_token, account.window_started_at,
                   account.window_requests, account.baseline_done, account.failures,
                   account.last_polled_at, account.token_secret)


def _relink(engine: Engine, account_id: int, reason: str) -> None:
    with engine.begin() as conn:
        set_account(conn, account_id, state="relink", last_error=reason)
    log.warning("account_needs_relink", account=account_id, reason=reason)
