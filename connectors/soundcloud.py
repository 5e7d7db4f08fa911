"""SoundCloud: a poller of each linked user's liked tracks (SoundCloud has no webhooks; relays
post likes through the Standard Webhooks connector, `connectors.relay`).

`GET /me/likes/tracks?linked_partitioning=true&limit=50` with `Authorization: OAuth <token>`,
following `next_href` (an absolute URL) for at most `max_pages` pages. Tracks and users are
identified by their URNs (`soundcloud:tracks:123`, `soundcloud:users:456`); a linked account's
identity is its user URN. SoundCloud says nothing of when a like happened: snapshots are
diffed (`connectors.polling`). A 401 refreshes the token once at `token_url`; refresh tokens
are single-use, so the new one is stored at once; if the refresh is refused the account is
marked for relinking. On (`poller` returns one) when `connectors.soundcloud.client_id` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from base.config import Settings
from base.vault import Vault, vault
from connectors.platform import OAuthProvider, Platform
from connectors.poll_http import HTTP_TIMEOUT, oauth_refresh, reset_time, route
from connectors.poll_types import (
    Account,
    Item,
    RateLimited,
    Snapshot,
    TokenExpired,
    Tokens,
    TransientError,
)

API = "https://api.soundcloud.com"
TOKEN_URL = "https://secure.soundcloud.com/oauth/token"
PAGE = 50


@dataclass
class SoundCloudPoller:
    client_id: str
    client_secret: str = field(repr=False)
    api_base: str = ""
    token_url: str = ""
    poll_seconds: int = 900
    max_pages: int = 5
    window_requests: int = 10_000  # SoundCloud publishes app-wide limits, not per-user ones
    window_seconds: int = 900
    platform: str = "soundcloud"
    vault: Vault = field(kw_only=True, repr=False)

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Accept"] = "application/json; charset=utf-8"
        return route(session, API, self.api_base)

    def fetch(self, account: Account, budget: int) -> Snapshot:
        items: list[Item] = []
        url: str | None = f"{API}/me/likes/tracks?linked_partitioning=true&limit={PAGE}"
        made = 0
        with self.session() as session:
            while url and made < min(budget, self.max_pages):
                made += 1
                try:
                    response = session.get(url, timeout=HTTP_TIMEOUT, headers={
                        "Authorization": f"OAuth {account.access_token}"})
                except requests.RequestException as exc:
                    raise TransientError(
                        f"SoundCloud unreachable: {exc.__class__.__name__}") from None
                if response.status_code == 401:
                    raise TokenExpired("SoundCloud refused the access token")
                if response.status_code == 429:
                    raise RateLimited(reset_time(response.headers, "x-ratelimit-reset"), made)
                if not response.ok:
                    raise TransientError(f"SoundCloud answered {response.status_code}")
                page = response.json()
                items += [_item(track) for track in page.get("collection") or []
                          if isinstance(track, Mapping) and track.get("urn")]
                url = page.get("next_href")
        return Snapshot(items, complete=not url, requests=made)

    def refresh(self, account: Account) -> Tokens | None:
        with self.session() as session:
            return oauth_refresh(session, self.token_url or TOKEN_URL, self.client_id,
                                 self.client_secret, account.refresh_token)


def _item(track: Mapping[str, Any]) -> Item:
    user = track.get("user") or {}
    owner = user.get("urn") or f"soundcloud:users:{user.get('id')}"
    title = track.get("title")
    return Item(content_id=str(track["urn"]), owner_id=str(owner),
                url=track.get("permalink_url"), title=title[:512] if title else None)


def poller(config: Settings) -> SoundCloudPoller | None:
    """The SoundCloud poller, or None while `connectors.soundcloud.client_id` is not set."""
    section = PLATFORM.section(config)
    if not section.client_id:
        return None
    return SoundCloudPoller(section.client_id, section.client_secret, section.api_base,
                            section.token_url, section.poll_seconds,
                            section.max_pages, vault=vault(config))


@dataclass(frozen=True)
class SoundCloudSettings:
    """`connectors.soundcloud`: linking and the poller are on with `client_id`."""

    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    # poller: "" = https://api.soundcloud.com / secure.soundcloud.com
    api_base: str = ""
    token_url: str = ""
    poll_seconds: int = 900
    max_pages: int = 5
    requests_per_minute: int = 600
    # linking (OAuth 2.1 + PKCE; tokens at token_url): "" = secure.soundcloud.com/authorize,
    # api.soundcloud.com/me
    oauth_authorize_url: str = ""
    profile_url: str = ""


PLATFORM = Platform(
    name="soundcloud", display_name="SoundCloud", settings=SoundCloudSettings, poller=poller,
    # The token URL is the poller's `token_url` (one key for both grants); the identity is the
    # user's URN, as the poller sees likes' owners.
    linking=OAuthProvider(
        "https://secure.soundcloud.com/authorize", "https://secure.soundcloud.com/oauth/token",
        "https://api.soundcloud.com/me", (), pkce=True, client_auth="post", user_id=("id",),
        username=("permalink",), profile_scheme="OAuth",
        config_keys=("oauth_authorize_url", "token_url", "profile_url"),
        identity=lambda user_id, _instance: f"soundcloud:users:{user_id}"),
)
