"""Shared poller logic: read a linked account's likes, diff them against what was seen before,
and record the changes as normalised events in the inbox (the same path as webhooks).

A platform poller is a small object (see `Poller`) whose `fetch` reads one snapshot of an
account's likes within a request budget and raises `RateLimited`, `TokenExpired` or
`TransientError`; everything else is here:

- **Diff.** A liked item not seen before is a like, identified by the time it was first seen
  and dated by it too, unless the platform says when the like happened (`Item.liked_at`:
  Flickr's `date_faved`); an item seen before that is missing from a *complete* snapshot is
  an unlike.
  The event id is deterministic: `(platform, actor, content, kind, first-seen time)`, so
  replaying one observation is deduplicated while a like after an unlike is a new event.
  The first poll of an account records a baseline and emits nothing (the platforms say
  nothing of when the old likes happened).
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

import hashlib
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests
import structlog
from requests.adapters import HTTPAdapter
from sqlalchemy import Connection, Engine, delete, insert, select, update

from base.tables.connectors import poll_accounts, poll_seen
from base.vault import Vault
from ledger import identities
from ledger.events import NormalisedEvent, check_event
from ledger.schema import identities as identities_table
from ledger.sql import utcnow
from pipeline import inbox

log = structlog.get_logger(__name__)
# Client libraries log request headers (bearer tokens) at DEBUG: keep them quieter.
for _name in ("tweepy", "tweepy.client", "requests_oauthlib", "urllib3"):
    logging.getLogger(_name).setLevel(logging.INFO)

MAX_BACKOFF = timedelta(hours=6)
SLEEP_WHILE_OFF = 3600  # an account whose flattring is off is looked at again after this
HTTP_TIMEOUT = 10.0


class PollError(Exception):
    """A poll that could not complete. The message never contains a token."""


class RateLimited(PollError):
    def __init__(self, reset_at: datetime | None, requests_made: int = 0) -> None:
        super().__init__("rate limited")
        self.reset_at = reset_at
        self.requests_made = requests_made


class TokenExpired(PollError):
    """The platform refused the access token (401): refresh it once, else relink."""


class TransientError(PollError):
    """Network trouble or a 5xx: try again later, with backoff."""


@dataclass(frozen=True, slots=True)
class Item:
    """One liked piece of content as a poller sees it."""

    content_id: str
    owner_id: str
    url: str | None = None
    title: str | None = None
    liked_at: datetime | None = None  # when the platform says the like happened, if it does


@dataclass(slots=True)
class Snapshot:
    """The likes read in one poll; `complete` when the list was read to its end;
    `newest_first` when the platform lists likes by the time they were given, newest first."""

    items: list[Item]
    complete: bool
    requests: int
    newest_first: bool = False


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    platform: str
    instance: str
    platform_user_id: str
    remote_id: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    window_started_at: datetime | None
    window_requests: int
    baseline_done: bool
    failures: int
    last_polled_at: datetime | None = None
    token_secret: str | None = field(default=None, repr=False)  # OAuth 1.0a (Flickr)


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime | None


class Poller(Protocol):
    """One platform's poller, built from its config section."""

    platform: str
    poll_seconds: int
    window_requests: int
    window_seconds: int
    vault: Vault  # opens and seals the stored tokens

    def fetch(self, account: Account, budget: int) -> Snapshot:
        """Read the account's likes with at most `budget` requests."""

    def refresh(self, account: Account) -> Tokens | None:
        """New tokens from the refresh token, or None when that is not possible."""


@dataclass(frozen=True, slots=True)
class PollOutcome:
    account_id: int
    status: str  # polled | baseline | rate_limited | relink | error | window_full | skipped
    likes: int = 0
    unlikes: int = 0
    requests: int = 0


def event_id(platform: str, actor: str, content: str, kind: str, seen_at: datetime) -> str:
    """The deterministic id of a polled observation."""
    key = "\x1f".join((platform, actor, content, kind, seen_at.isoformat()))
    return "poll-" + hashlib.sha256(key.encode()).hexdigest()[:48]


def diff(seen: Mapping[str, Item], snapshot: Snapshot) -> tuple[list[Item], list[Item]]:
    """(new items, vanished items). Vanished only counts when the snapshot is complete."""
    current = {item.content_id: item for item in snapshot.items}
    new = [item for cid, item in current.items() if cid not in seen]
    gone = [item for cid, item in seen.items() if cid not in current] if snapshot.complete else []
    return new, gone


def in_view(seen: Mapping[str, Item], snapshot: Snapshot,
            new: list[Item]) -> tuple[list[Item], list[Item]]:
    """(new likes, older likes that came into view) of the `new` items. In a list ordered
    newest first, an unseen item below one seen before was liked before it: it was beyond the
    pages read until an unlike higher up moved it into them. It is stored as seen, and is no
    like now."""
    if not snapshot.newest_first:
        return new, []
    first = next((n for n, item in enumerate(snapshot.items) if item.content_id in seen), None)
    if first is None:
        return new, []
    above = {item.content_id for item in snapshot.items[:first]}
    return ([item for item in new if item.content_id in above],
            [item for item in new if item.content_id not in above])


def events_for(account: Account, new: Sequence[Item], gone: Sequence[Item],
               now: datetime) -> list[NormalisedEvent]:
    def make(item: Item, kind: str) -> NormalisedEvent:
        return NormalisedEvent(
            event_id=event_id(account.platform, account.platform_user_id, item.content_id, kind,
                              now),
            platform=account.platform, kind=kind, actor_id=account.platform_user_id,
            content_id=item.content_id, owner_id=item.owner_id,
            occurred_at=item.liked_at if kind == "like" and item.liked_at else now,
            url=item.url, title=(item.title or "")[:512] or None)

    return [make(item, "like") for item in new] + [make(item, "unlike") for item in gone]


def valid_items(account: Account, snapshot: Snapshot, now: datetime) -> list[Item]:
    """The snapshot's items whose events pass the event rules (`ledger.validation`); an item
    that does not (a lone surrogate in its title, a `javascript:` link, an id too long) is
    skipped and logged, never stored, so one bad item can not stop an account's polls."""
    kept = []
    for item in snapshot.items:
        try:
            check_event(events_for(account, [item], [], now)[0])
        except (ValueError, TypeError) as exc:
            log.warning("poll_item_skipped", platform=account.platform, account=account.id,
                        reason=str(exc))
            continue
        kept.append(item)
    return kept


# --- storage --------------------------------------------------------------------------------

def add_account(conn: Connection, uid: int, platform: str, platform_user_id: str, *,
                vault: Vault, remote_id: str | None = None, access_token: str,
                refresh_token: str | None = None, expires_at: datetime | None = None,
                token_secret: str | None = None, instance: str = "", poll_seconds: int = 900,
                now: datetime | None = None) -> int:
    """Link `platform_user_id` to user `uid` (likes become flattrs, owned things pay `uid`) and
    store its tokens, sealed by `vault`, for polling. The first poll is spread over one poll
    interval. Linking an account again replaces its tokens and makes it active."""
    now = now or utcnow()
    identities.link(conn, uid, platform, platform_user_id, claim=True)
    first = now + timedelta(seconds=random.uniform(0, max(1, poll_seconds)))
    values = {"remote_id": remote_id or platform_user_id, "state": "active", "failures": 0,
              "last_error": None, **sealed(vault, access_token, refresh_token, expires_at),
              "token_secret": None if token_secret is None else vault.seal(token_secret)}
    found = conn.execute(select(poll_accounts.c.id).where(
        poll_accounts.c.platform == platform, poll_accounts.c.instance == instance,
        poll_accounts.c.platform_user_id == platform_user_id)).scalar()
    if found is not None:
        conn.execute(update(poll_accounts).where(poll_accounts.c.id == found).values(
            next_poll_at=now, **values))
        return found
    return conn.execute(insert(poll_accounts).values(
        platform=platform, instance=instance, platform_user_id=platform_user_id,
        next_poll_at=first, created_at=now, **values).returning(poll_accounts.c.id)).scalar_one()


def sealed(vault: Vault, access_token: str, refresh_token: str | None,
           expires_at: datetime | None) -> dict[str, Any]:
    """The token columns of `poll_accounts`, the tokens sealed."""
    return {"access_token": vault.seal(access_token),
            "refresh_token": None if refresh_token is None else vault.seal(refresh_token),
            "token_expires_at": expires_at}


def list_accounts(conn: Connection, platform: str | None = None) -> list[Any]:
    """Linked poll accounts (of one platform, or all) with their poll state, oldest first."""
    query = select(poll_accounts.c.id, poll_accounts.c.platform, poll_accounts.c.instance,
                   poll_accounts.c.platform_user_id, poll_accounts.c.state,
                   poll_accounts.c.next_poll_at, poll_accounts.c.last_polled_at,
                   poll_accounts.c.last_error).order_by(poll_accounts.c.id)
    if platform:
        query = query.where(poll_accounts.c.platform == platform)
    return list(conn.execute(query))


def load_account(conn: Connection, account_id: int,
                 vault: Vault) -> tuple[Account | None, bool]:
    """(the account if it is active, whether its identity has flattring on). ValueError when
    `vault` cannot open its tokens."""
    row = conn.execute(
        select(poll_accounts, identities_table.c.flattr_enabled)
        .join(identities_table, (identities_table.c.platform == poll_accounts.c.platform)
              & (identities_table.c.platform_user_id == poll_accounts.c.platform_user_id))
        .where(poll_accounts.c.id == account_id, poll_accounts.c.state == "active")).first()
    if row is None:
        return None, False
    refresh = None if row.refresh_token is None else vault.open(row.refresh_token)
    secret = None if row.token_secret is None else vault.open(row.token_secret)
    return Account(row.id, row.platform, row.instance, row.platform_user_id, row.remote_id,
                   vault.open(row.access_token), refresh, row.window_started_at,
                   row.window_requests, row.baseline_done, row.failures, row.last_polled_at,
                   secret), row.flattr_enabled


def _seen(conn: Connection, account_id: int) -> dict[str, Item]:
    rows = conn.execute(select(poll_seen).where(poll_seen.c.account_id == account_id))
    return {r.content_id: Item(r.content_id, r.owner_id, r.url, r.title) for r in rows}


def _update(conn: Connection, account_id: int, **values: Any) -> None:
    conn.execute(update(poll_accounts).where(poll_accounts.c.id == account_id).values(**values))


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


# --- one poll -------------------------------------------------------------------------------

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
            _update(conn, account.id, baseline_done=False,
                    next_poll_at=now + timedelta(seconds=SLEEP_WHILE_OFF))
        return PollOutcome(account_id, "skipped")
    start, used = _window(poller, account, now)
    budget = poller.window_requests - used
    if budget <= 0:
        with engine.begin() as conn:
            _update(conn, account.id, next_poll_at=start + timedelta(
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
            _update(conn, account.id, next_poll_at=wait_until + _jitter(5),
                    window_started_at=start, window_requests=used + exc.requests_made,
                    last_error="rate limited (429)")
        log.info("poll_rate_limited", platform=poller.platform, account=account.id,
                 until=wait_until.isoformat())
        return PollOutcome(account.id, "rate_limited", requests=exc.requests_made)
    except PollError as exc:
        failures = account.failures + 1
        with engine.begin() as conn:
            _update(conn, account.id, failures=failures, last_error=str(exc)[:255],
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
        seen = _seen(conn, account.id)
        checked = Snapshot(valid_items(account, snapshot, now), snapshot.complete,
                           snapshot.requests, snapshot.newest_first)
        new, gone = diff(seen, checked)
        new, older = in_view(seen, checked, new)
        if new or older:
            conn.execute(insert(poll_seen), [
                {"account_id": account.id, "content_id": i.content_id, "owner_id": i.owner_id,
                 "url": i.url, "title": i.title, "first_seen_at": now} for i in new + older])
        for chunk in range(0, len(gone), 500):
            conn.execute(delete(poll_seen).where(
                poll_seen.c.account_id == account.id,
                poll_seen.c.content_id.in_([i.content_id for i in gone[chunk:chunk + 500]])))
        emitted = events_for(account, new, gone, now) if account.baseline_done else []
        inbox.append(conn, [inbox.Entry(event, None) for event in emitted])
        _update(conn, account.id, baseline_done=True, last_polled_at=now, failures=0,
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
        _update(conn, account.id, **sealed(poller.vault, tokens.access_token,
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
        _update(conn, account_id, state="relink", last_error=reason)
    log.warning("account_needs_relink", account=account_id, reason=reason)


# --- HTTP helpers shared by pollers ---------------------------------------------------------

class RouteAdapter(HTTPAdapter):
    """A transport adapter that sends requests for one origin to another (a local fake in
    tests and benchmarks): mounted on a client library's own `requests.Session`, so the
    library's real code builds and sends every request."""

    def __init__(self, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        parts = urlsplit(target.rstrip("/"))
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: float | tuple[float, float] | tuple[float, None] | None = None,
             verify: bool | str = True,
             cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((self._scheme, self._netloc, self._prefix + parts.path,
                                  parts.query, parts.fragment))
        # requests.Session passes timeout=None when the library gave none: never wait forever
        return super().send(request, stream, HTTP_TIMEOUT if timeout is None else timeout,
                            verify, cert, proxies)


def route(session: requests.Session, origin: str, target: str) -> requests.Session:
    """Send `session`'s requests for `origin` (`https://host`) to `target` when it is set."""
    if target:
        session.mount(origin.rstrip("/") + "/", RouteAdapter(target))
    return session


def reset_time(headers: Mapping[str, str], name: str = "x-rate-limit-reset") -> datetime | None:
    """A Unix-seconds reset header as naive UTC."""
    raw = headers.get(name)
    try:
        return datetime.utcfromtimestamp(int(raw)) if raw else None
    except (TypeError, ValueError, OverflowError):
        return None


def oauth_refresh(session: requests.Session, token_url: str, client_id: str,
                  client_secret: str, refresh_token: str | None,
                  now: datetime | None = None, secret_in_body: bool = False) -> Tokens | None:
    """The OAuth 2 refresh grant (form-encoded, client credentials as HTTP Basic, or in the
    form with `secret_in_body`). None when the grant is refused (the refresh token is used up
    or revoked)."""
    if not refresh_token:
        return None
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": client_id}
    if secret_in_body:
        form["client_secret"] = client_secret
    try:
        response = session.post(token_url, data=form, timeout=HTTP_TIMEOUT,
                                auth=None if secret_in_body else (client_id, client_secret))
    except requests.RequestException as exc:
        raise TransientError(f"token refresh failed: {exc.__class__.__name__}") from None
    if response.status_code in (400, 401, 403):
        return None
    if response.status_code == 429:
        raise RateLimited(reset_time(response.headers))
    if not response.ok:
        raise TransientError(f"token refresh answered {response.status_code}")
    try:
        body = response.json()
        expires = body.get("expires_in")
        moment = (now or utcnow()) + timedelta(seconds=int(expires)) if expires else None
        refresh = body.get("refresh_token")
        return Tokens(str(body["access_token"]), refresh if isinstance(refresh, str) else None,
                      moment)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
        raise TransientError("token refresh answered something that is not a token") from None
