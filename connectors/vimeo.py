"""Vimeo: a poller of each linked user's liked videos, through PyVimeo (`vimeo.VimeoClient`).

`GET /me/likes?page=N&per_page=100&fields=uri,name,link,user.uri` with the user's bearer token,
page after page while `paging.next` is set, for at most `max_pages` pages; snapshots are
diffed (`connectors.polling`). A video is identified by the id in its `uri` (`/videos/<id>`),
its owner by the id in `user.uri` (`/users/<id>`), the same form as a linked account's identity
(the `uri` of `/me`). The thing's URL is the video's `link` (an https link on vimeo.com; an item
whose link points elsewhere is skipped and logged), its title the video's `name`.

Vimeo limits requests per user per minute (by the app owner's membership) and says where a
user stands in `X-RateLimit-Remaining` / `X-RateLimit-Reset` (an ISO 8601 time, or Unix
seconds): a poll stops reading pages when none remain, and a 429 waits for the reset. PyVimeo
raises on 429 without the response, so the headers are taken with a requests response hook.
Vimeo access tokens do not expire: one that is refused (revoked) marks the account for
relinking. PyVimeo builds URLs on its `API_ROOT`, set per client from
`connectors.vimeo.api_base` (a local fake in tests). On when `connectors.vimeo.client_id` is set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests

from base.config import Settings
from base.vault import Vault, vault
from connectors.liked_items import ident, page_list, parse_items, site_url, title
from connectors.platform import OAuthProvider, Platform
from connectors.poll_http import HTTP_TIMEOUT, cap_answer, reset_time
from connectors.poll_types import (
    Account,
    Item,
    RateLimited,
    Snapshot,
    TokenExpired,
    Tokens,
    TransientError,
)

if TYPE_CHECKING:
    import vimeo

API = "https://api.vimeo.com"
PAGE = 100  # Vimeo's largest per_page
FIELDS = "uri,name,link,user.uri"  # asking for fields only also earns a higher rate limit
VIDEO_URI = re.compile(r"/videos/([0-9]{1,20})")
USER_URI = re.compile(r"/users/([0-9]{1,20})")
HOSTS = ("vimeo.com",)


@dataclass
class VimeoPoller:
    client_id: str
    client_secret: str = field(repr=False)
    api_base: str = ""
    poll_seconds: int = 900
    max_pages: int = 5
    window_requests: int = 25  # per user per minute: below the lowest membership's limit
    window_seconds: int = 60
    platform: str = "vimeo"
    vault: Vault = field(kw_only=True, repr=False)

    def client(self, token: str) -> vimeo.VimeoClient:
        import vimeo

        client = vimeo.VimeoClient(token=token)
        if self.api_base:
            client.API_ROOT = self.api_base.rstrip("/")
        return client

    def fetch(self, account: Account, budget: int) -> Snapshot:
        from vimeo.exceptions import APIRateLimitExceededFailure

        client = self.client(account.access_token)
        seen: list[requests.Response] = []
        items: list[Item] = []
        made = 0
        while made < min(budget, self.max_pages):
            made += 1
            try:
                response = client.get("/me/likes", timeout=HTTP_TIMEOUT, params={
                    "page": made, "per_page": PAGE, "fields": FIELDS},
                    hooks={"response": [lambda r, *_, **__: seen.append(r), cap_answer]})
            except APIRateLimitExceededFailure:
                raise RateLimited(rate_reset(seen[-1].headers) if seen else None, made) from None
            except requests.RequestException as exc:
                raise TransientError(f"Vimeo unreachable: {exc.__class__.__name__}") from None
            if response.status_code == 401:
                raise TokenExpired("Vimeo refused the access token")
            if not response.ok:
                raise TransientError(f"Vimeo answered {response.status_code}")
            try:
                page = response.json()
            except ValueError:
                raise TransientError("Vimeo answered something that is not JSON") from None
            items += parse_items(account, page_list(page, "data", "Vimeo"), video)
            paging = page.get("paging")
            following = paging.get("next", "") if isinstance(paging, Mapping) else ""
            if following is None:
                return Snapshot(items, complete=True, requests=made)
            if not isinstance(following, str) or not following:
                break  # no paging as documented: the list may go on, so unlike nothing
            if response.headers.get("X-RateLimit-Remaining", "").strip() == "0":
                break
        return Snapshot(items, complete=False, requests=made)

    def refresh(self, account: Account) -> Tokens | None:
        return None  # Vimeo tokens don't expire; a refused one needs a new link


def video(entry: Any) -> Item:
    """One liked video of `/me/likes` as an Item (BadItem when it is not Vimeo's shape)."""
    content = ident(entry, "uri", pattern=VIDEO_URI)
    owner = ident(entry, "user", "uri", pattern=USER_URI)
    return Item(content_id=content.rsplit("/", 1)[1], owner_id=owner.rsplit("/", 1)[1],
                url=site_url(entry.get("link"), HOSTS, "link"), title=title(entry, "name"))


def user_id(uri: str, _instance: str = "") -> str:
    """A linked account's identity: the id of its `uri` (`/users/<id>` → `<id>`)."""
    found = USER_URI.fullmatch(uri)
    if found is None:
        raise ValueError("the Vimeo profile's uri is not /users/<id>")
    return found.group(1)


def rate_reset(headers: Mapping[str, str]) -> datetime | None:
    """`X-RateLimit-Reset` as naive UTC: an ISO 8601 time (Vimeo's documented form) or Unix
    seconds."""
    raw = (headers.get("X-RateLimit-Reset") or "").strip()
    if raw.isdigit():
        return reset_time(headers, "X-RateLimit-Reset")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def poller(config: Settings) -> VimeoPoller | None:
    """The Vimeo poller, or None while `connectors.vimeo.client_id` is not set."""
    section = config.connectors["vimeo"]
    if not section.client_id:
        return None
    return VimeoPoller(section.client_id, section.client_secret, section.api_base,
                       section.poll_seconds, section.max_pages,
                       vault=vault(config))


@dataclass(frozen=True)
class VimeoSettings:
    """`connectors.vimeo`: linking and the poller are on with `client_id`."""

    client_id: str = ""
    client_secret: str = ""
    api_base: str = ""  # "" = https://api.vimeo.com
    poll_seconds: int = 900
    max_pages: int = 5  # pages of 100 likes read per poll
    requests_per_minute: int = 600  # all accounts together; Vimeo's limits are per user
    # linking: "" = api.vimeo.com/oauth/authorize, /oauth/access_token, /me
    oauth_authorize_url: str = ""
    oauth_token_url: str = ""
    profile_url: str = ""


PLATFORM = Platform(
    name="vimeo", display_name="Vimeo", settings=VimeoSettings, poller=poller,
    # Vimeo wants the client as HTTP Basic; its tokens do not expire (no refresh token)
    linking=OAuthProvider(
        f"{API}/oauth/authorize", f"{API}/oauth/access_token", f"{API}/me", ("public",),
        pkce=False, client_auth="basic", user_id=("uri",), username=("name",),
        identity=user_id),
)
