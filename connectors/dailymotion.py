"""Dailymotion: a poller of each linked user's liked videos, with requests through the one door
out (`base.public_net.guarded_session`).

`GET /me/likes?fields=id,title,url,owner&page=N&limit=100` with the user's bearer token (the
Graph API's list answer: `{"page", "limit", "has_more", "list": [...]}`), page after page while
`has_more`, for at most `max_pages` pages; snapshots are diffed (`connectors.polling`). A video
is identified by its `id` (`x8abc12`), its owner by `owner` (the user id, the same form as a
linked account's identity, the `id` of `/me`); the thing's URL is its `url` (an https link on
dailymotion.com; an item whose link points elsewhere is skipped and logged).

The `dailymotion` SDK on PyPI was last released in 2020: plain requests are used instead.
Dailymotion documents no read limits (only upload ones): the scheduler paces the app at
`requests_per_minute`, a 429 waits for `Retry-After` (else backs off). Access tokens expire
(`expires_in`); a 401 refreshes once at the token URL (client credentials in the form, as
Dailymotion documents); if that is refused the account is marked for relinking. On when
`connectors.dailymotion.client_id` is set; `api_base` routes https://api.dailymotion.com
elsewhere (a local fake in tests).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

from base.config import Settings
from base.public_net import Guard, UnsafeTarget, guarded_session
from base.vault import Vault, vault
from connectors.liked_items import ident, page_list, parse_items, site_url, title
from connectors.platform import OAuthProvider, Platform
from connectors.poll_http import HTTP_TIMEOUT, oauth_refresh, route
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

API = "https://api.dailymotion.com"
TOKEN_URL = "https://api.dailymotion.com/oauth/token"
PAGE = 100  # the Graph API's largest `limit`
FIELDS = "id,title,url,owner"
ID = re.compile(r"x[0-9a-z]{1,31}")
HOSTS = ("dailymotion.com",)


@dataclass
class DailymotionPoller:
    client_id: str
    client_secret: str = field(repr=False)
    api_base: str = ""
    token_url: str = ""
    poll_seconds: int = 900
    max_pages: int = 5
    window_requests: int = 60  # none documented: a modest per-user pace
    window_seconds: int = 900
    platform: str = "dailymotion"
    vault: Vault = field(kw_only=True, repr=False)
    guard: Guard = field(kw_only=True, default=Guard())

    def session(self) -> requests.Session:
        session = guarded_session(self.guard)
        session.headers["Accept"] = "application/json"
        return route(session, API, self.api_base)

    def fetch(self, account: Account, budget: int) -> Snapshot:
        items: list[Item] = []
        made = 0
        with self.session() as session:
            while made < min(budget, self.max_pages):
                made += 1
                query: dict[str, str | int] = {"fields": FIELDS, "page": made, "limit": PAGE}
                bearer = {"Authorization": f"Bearer {account.access_token}"}
                try:
                    response = session.get(f"{API}/me/likes", timeout=HTTP_TIMEOUT, params=query,
                                           headers=bearer)
                except (requests.RequestException, UnsafeTarget) as exc:
                    raise TransientError(
                        f"Dailymotion unreachable: {exc.__class__.__name__}") from None
                if response.status_code == 401:
                    raise TokenExpired("Dailymotion refused the access token")
                if response.status_code == 429:
                    raise RateLimited(retry_after(response.headers), made)
                if not response.ok:
                    raise TransientError(f"Dailymotion answered {response.status_code}")
                try:
                    page = response.json()
                except ValueError:
                    raise TransientError("Dailymotion answered something that is not JSON") \
                        from None
                items += parse_items(account, page_list(page, "list", "Dailymotion"), video)
                if page.get("has_more") is False:
                    return Snapshot(items, complete=True, requests=made)
                if page.get("has_more") is not True:
                    break  # not a boolean: the list may go on, so unlike nothing
        return Snapshot(items, complete=False, requests=made)

    def refresh(self, account: Account) -> Tokens | None:
        # the token URL is Dailymotion's or the operator's (`oauth_token_url`), never a member's
        with route(requests.Session(), API, self.api_base) as session:
            return oauth_refresh(session, self.token_url or TOKEN_URL, self.client_id,
                                 self.client_secret, account.refresh_token, secret_in_body=True)


def video(entry: Any) -> Item:
    """One liked video of `/me/likes` as an Item (BadItem when it is not Dailymotion's shape)."""
    return Item(content_id=ident(entry, "id", pattern=ID),
                owner_id=ident(entry, "owner", pattern=ID),
                url=site_url(entry.get("url"), HOSTS, "url"), title=title(entry, "title"))


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> datetime | None:
    """`Retry-After` in seconds as a naive UTC time; None when absent or not seconds."""
    raw = (headers.get("Retry-After") or "").strip()
    if not raw.isdigit() or len(raw) > 7:
        return None
    return (now or utcnow()) + timedelta(seconds=int(raw))


def poller(config: Settings) -> DailymotionPoller | None:
    """The Dailymotion poller, or None while `connectors.dailymotion.client_id` is not set."""
    section = config.connectors["dailymotion"]
    if not section.client_id:
        return None
    return DailymotionPoller(section.client_id, section.client_secret,
                             section.api_base, section.oauth_token_url,
                             section.poll_seconds, section.max_pages,
                             vault=vault(config), guard=Guard.from_config(config))


@dataclass(frozen=True)
class DailymotionSettings:
    """`connectors.dailymotion`: linking and the poller are on with `client_id` (a public API
    key)."""

    client_id: str = ""
    client_secret: str = ""
    api_base: str = ""  # "" = https://api.dailymotion.com
    poll_seconds: int = 900
    max_pages: int = 5  # pages of 100 likes read per poll
    requests_per_minute: int = 300  # all accounts together; no read limit is published
    # linking: "" = www.dailymotion.com/oauth/authorize, api.dailymotion.com/oauth/token (the
    # poller refreshes there too), api.dailymotion.com/me
    oauth_authorize_url: str = ""
    oauth_token_url: str = ""
    profile_url: str = ""


PLATFORM = Platform(
    name="dailymotion", display_name="Dailymotion", settings=DailymotionSettings,
    poller=poller,
    linking=OAuthProvider(
        "https://www.dailymotion.com/oauth/authorize", TOKEN_URL,
        f"{API}/me?fields=id,username,screenname", (), pkce=False, client_auth="post",
        user_id=("id",), username=("username",)),
)
