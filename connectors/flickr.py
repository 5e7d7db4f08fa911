"""Flickr: a poller of each linked member's favourites (Flickr has no webhooks for them).

`flickr.favorites.getList` on the REST endpoint (`https://api.flickr.com/services/rest/`,
`format=json&nojsoncallback=1`, `extras=owner_name`, `per_page`, `page`), called through the
`flickrapi` library and signed with the member's OAuth 1.0a token and token secret (both
stored sealed; see `members.oauth1` for linking). A favourite's thing is the photo page
`https://www.flickr.com/photos/<owner nsid>/<photo id>/`, owned by the owner's NSID; its
`date_faved` is the like's time.

Two kinds of poll, both diffed against what was seen before (`connectors.polling`):
- **incremental** (most polls): only the favourites made since an hour before the last poll
  (`min_fave_date`); the snapshot is incomplete, so it yields likes only;
- **full** (the first poll, a fresh baseline, and once per `full_listing_seconds` per account,
  spread over that period by account id; every poll when it is 0): the whole list, up to
  `max_pages` pages of `per_page`; when it was read to its end and no entry had to be
  skipped, the snapshot is complete and a favourite seen before that is missing is an unlike.
  A favourite that an incremental poll missed (the account was backing off) is picked up
  there as a like.

Limits: Flickr allows 3,600 queries per hour per API key, all accounts together; the scheduler
spends `requests_per_minute` requests a minute (default 50, under the key's 60; a full
listing's pages beyond the first are paid from the next minutes' budget), and a 429
waits for `Retry-After` (else backs off). Error code 98 or 99 (token revoked, read permission
gone) marks the account for relinking: Flickr's tokens do not expire and cannot be refreshed.
Entries that are not what Flickr documents (no numeric photo id, no `…@N..` owner NSID) are
skipped and logged, never stored. On (`poller` returns one) when `connectors.flickr.api_key`
is set. `api_base` sends the REST calls elsewhere (a local fake in tests).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
import structlog

from base.config import Settings
from base.vault import Vault, vault
from connectors.platform import OAuthProvider, Platform, key_set
from connectors.poll_http import HTTP_TIMEOUT, capped
from connectors.poll_types import (
    Account,
    Item,
    RateLimited,
    Snapshot,
    TokenExpired,
    Tokens,
    TransientError,
)
from ledger.sql import utcnow

if TYPE_CHECKING:
    import flickrapi

API = "https://api.flickr.com"
REST_PATH = "/services/rest/"
PHOTO_PAGE = "https://www.flickr.com/photos/{owner}/{photo}/"
PHOTO_ID = re.compile(r"[0-9]{1,24}")
NSID = re.compile(r"[0-9]{1,20}@N[0-9]{2}")
OVERLAP = timedelta(hours=1)  # incremental polls look back this far before the last poll
EARLIEST_FAVE = datetime(2004, 1, 1)  # before Flickr existed: not a real `date_faved`
TOKEN_GONE = {98, 99}  # "Invalid auth token", "Insufficient permissions"

log = structlog.get_logger(__name__)
# flickrapi logs every refused answer's whole body at ERROR: text from outside, not for our logs;
# oauthlib logs the signed parameters (the member's token) at DEBUG
logging.getLogger("flickrapi").setLevel(logging.CRITICAL)
logging.getLogger("oauthlib").setLevel(logging.INFO)


@dataclass
class FlickrPoller:
    api_key: str
    api_secret: str = field(repr=False)
    api_base: str = ""
    poll_seconds: int = 900
    full_listing_seconds: int = 21600
    max_pages: int = 5
    per_page: int = 500
    window_requests: int = 60  # per account: a share of the key's hourly 3,600 ...
    window_seconds: int = 3600  # ... per hour
    platform: str = "flickr"
    vault: Vault = field(kw_only=True, repr=False)

    def client(self, account: Account) -> tuple[flickrapi.FlickrAPI, list[requests.Response]]:
        """A `flickrapi` client signing with the account's token, and the list its HTTP
        answers are kept in (the library reports a refused answer without its status)."""
        import flickrapi
        from flickrapi.auth import FlickrAccessToken

        token = FlickrAccessToken(account.access_token, account.token_secret or "", "read")
        api = flickrapi.FlickrAPI(self.api_key, self.api_secret, token=token,
                                  format="parsed-json", store_token=False, timeout=HTTP_TIMEOUT)
        api.REST_URL = (self.api_base or API).rstrip("/") + REST_PATH
        answers: list[requests.Response] = []
        # the library's session is one for every instance of its class: each client its own
        session = requests.Session()
        session.hooks["response"].append(lambda response, *_a, **_k: answers.append(response))
        capped(session)
        api.flickr_oauth.session = session
        return api, answers

    def full_listing(self, account: Account, now: datetime) -> bool:
        """Whether this poll reads the whole list (see the module)."""
        if (not account.baseline_done or account.last_polled_at is None
                or self.full_listing_seconds <= 0):
            return True
        period = self.full_listing_seconds
        offset = account.id * 7919 % period
        return ((_seconds(now) + offset) // period
                != (_seconds(account.last_polled_at) + offset) // period)

    def fetch(self, account: Account, budget: int) -> Snapshot:
        now = utcnow()
        full = self.full_listing(account, now)
        params: dict[str, Any] = {"extras": "owner_name", "per_page": self.per_page}
        if not full and account.last_polled_at is not None:
            params["min_fave_date"] = _seconds(account.last_polled_at - OVERLAP)
        api, answers = self.client(account)
        items: list[Item] = []
        skipped = made = 0
        page, pages = 1, 1
        try:
            while page <= pages and made < min(budget, self.max_pages):
                made += 1
                photos = _photos(_call(api, answers, made, page=page, **params))
                pages = max(1, _count(photos.get("pages")))
                for entry in photos["photo"]:
                    item = _item(entry, now)
                    if item is None:
                        skipped += 1
                    else:
                        items.append(item)
                page += 1
        finally:
            api.flickr_oauth.session.close()
        if skipped:
            log.warning("poll_item_skipped", platform=self.platform, account=account.id,
                        reason="favourite without a numeric photo id and an owner NSID",
                        count=skipped)
        return Snapshot(items, complete=full and page > pages and not skipped, requests=made)

    def refresh(self, account: Account) -> Tokens | None:
        """Flickr's OAuth 1.0a tokens cannot be refreshed: a refused one needs a relink."""
        return None


def _call(api: flickrapi.FlickrAPI, answers: list[requests.Response], made: int,
          **params: Any) -> Any:
    """One signed `flickr.favorites.getList`; Flickr's refusals as the poller's errors."""
    from flickrapi.exceptions import FlickrError

    try:
        return api.favorites.getList(**params)
    except FlickrError as exc:
        status = answers[-1].status_code if answers else 0
        if status == 429:
            raise RateLimited(_retry_after(answers[-1].headers), made) from None
        if status == 401 or exc.code in TOKEN_GONE:
            raise TokenExpired("Flickr refused the access token") from None
        if status and status != 200:
            raise TransientError(f"Flickr answered {status}") from None
        raise TransientError(f"Flickr answered with error code {exc.code}") from None
    except requests.RequestException as exc:
        raise TransientError(f"Flickr unreachable: {exc.__class__.__name__}") from None
    except (ValueError, AttributeError, KeyError, TypeError):
        # not JSON, or not an object with Flickr's `stat`, `code` and `message` (flickrapi
        # reads them without looking)
        raise TransientError("Flickr's answer is not in Flickr's format") from None


def _photos(body: Any) -> Mapping[str, Any]:
    photos = body.get("photos") if isinstance(body, Mapping) else None
    if not isinstance(photos, Mapping) or not isinstance(photos.get("photo", []), list):
        raise TransientError("Flickr's answer has no list of photos")
    return {**photos, "photo": photos.get("photo", [])}


def _item(entry: Any, now: datetime) -> Item | None:
    """The favourite as an Item, or None when it is not in Flickr's documented shape."""
    if not isinstance(entry, Mapping):
        return None
    photo, owner = entry.get("id"), entry.get("owner")
    if isinstance(photo, int) and not isinstance(photo, bool):
        photo = str(photo)
    if not (isinstance(photo, str) and PHOTO_ID.fullmatch(photo)
            and isinstance(owner, str) and NSID.fullmatch(owner)):
        return None
    title = entry.get("title")
    if not (isinstance(title, str) and title.strip()):
        name = entry.get("ownername")
        title = f"A photo by {name}" if isinstance(name, str) and name.strip() else None
    return Item(content_id=photo, owner_id=owner, url=PHOTO_PAGE.format(owner=owner, photo=photo),
                title=title[:512] if title else None, liked_at=_faved(entry.get("date_faved"), now))


def _faved(raw: Any, now: datetime) -> datetime | None:
    """`date_faved` (Unix seconds, as digits) when it is a plausible past moment."""
    seconds = _count(raw)
    if not seconds:
        return None
    try:
        moment = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None
    return moment if EARLIEST_FAVE <= moment <= now else None


def _count(raw: Any) -> int:
    """A non-negative integer given as a number or as digits (Flickr writes both), else 0."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return max(0, raw)
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 19:
        return int(raw)
    return 0


def _retry_after(headers: Mapping[str, str]) -> datetime | None:
    seconds = _count(headers.get("retry-after"))
    return utcnow() + timedelta(seconds=min(seconds, 86400)) if seconds else None


def _seconds(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def poller(config: Settings) -> FlickrPoller | None:
    """The Flickr poller, or None while `connectors.flickr.api_key` is not set."""
    section = config.connectors["flickr"]
    if not section.api_key:
        return None
    return FlickrPoller(section.api_key, section.api_secret, section.api_base,
                        section.poll_seconds, section.full_listing_seconds,
                        section.max_pages, section.per_page,
                        section.window_requests, section.window_seconds,
                        vault=vault(config))


@dataclass(frozen=True)
class FlickrSettings:
    """`connectors.flickr`: the poller and linking are on with `api_key`."""

    api_key: str = ""
    api_secret: str = ""
    api_base: str = ""  # "" = https://api.flickr.com
    # linking (OAuth 1.0a): "" = https://www.flickr.com/services/oauth/…
    oauth_request_token_url: str = ""
    oauth_authorize_url: str = ""
    oauth_access_token_url: str = ""
    poll_seconds: int = 900
    full_listing_seconds: int = 21600  # 0: every poll reads the whole list
    max_pages: int = 5
    per_page: int = 500
    window_requests: int = 60
    window_seconds: int = 3600
    requests_per_minute: int = 50  # all accounts; Flickr allows 3,600 an hour per key


PLATFORM = Platform(
    name="flickr", display_name="Flickr", settings=FlickrSettings, poller=poller,
    # OAuth 1.0a (members.oauth1): authorize, access token, request token; the identity is in
    # the access token's answer
    linking=OAuthProvider(
        "https://www.flickr.com/services/oauth/authorize",
        "https://www.flickr.com/services/oauth/access_token",
        "https://www.flickr.com/services/oauth/request_token", (), pkce=False,
        client_auth="oauth1", user_id=("user_nsid",), username=("username",),
        config_keys=("oauth_authorize_url", "oauth_access_token_url",
                     "oauth_request_token_url"),
        enabled=key_set("api_key"), protocol="oauth1"),
)
