"""X (Twitter): the Account Activity webhook and the liked-tweets poller.

Webhook (`/webhooks/x`, on when `connectors.x.consumer_secret` is set):
- CRC: `GET /webhooks/x?crc_token=T` answers `{"response_token": "sha256=" +
  base64(HMAC-SHA256(consumer_secret, T))}` (`crc_response`).
- Deliveries are signed `x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer
  secret, raw body)>`; no timestamp is signed, so duplicates are expected and the favourite
  event's `id` is the event id (the ledger deduplicates on it).
- `favorite_events` carry both directions, told apart with `for_user_id`: likes *by* the
  subscribed user and likes *of* their posts. Both are likes whose actor is `user.id_str` and
  whose owner is `favorited_status.user.id_str`; an event that involves neither is dropped.
  Account Activity sends no unlike: the poller sees those.

Poller (on when `connectors.x.client_id` is set): `tweepy.Client(bearer_token=<user access
token>).get_liked_tweets(id, max_results=100, expansions=["author_id"], pagination_token=…,
user_auth=False)`, page by page within the per-user window (75 requests / 15 min); 429 raises
`RateLimited` with the `x-rate-limit-reset` time. `connectors.x.api_base` routes
`https://api.twitter.com` elsewhere (a local fake) through a transport adapter mounted on the
client's own session.

tweepy is imported where it is used: every command reads this module's descriptor (for the
settings), and most never poll.

X's developer terms have at times forbidden paying for or rewarding post actions: this
connector is off unless configured, and the operator carries that risk.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests

from base.config import Settings as Config
from base.vault import Vault, vault
from connectors.base import (
    Headers,
    PayloadError,
    Settings,
    SignatureError,
    WebhookConnector,
    event,
    field_of,
)
from connectors.platform import OAuthProvider, Platform
from connectors.poll_http import oauth_refresh, reset_time, route
from connectors.poll_types import (
    Account,
    Item,
    RateLimited,
    Snapshot,
    TokenExpired,
    Tokens,
    TransientError,
)
from ledger.events import NormalisedEvent

if TYPE_CHECKING:
    import tweepy

API = "https://api.twitter.com"
TOKEN_PATH = "/2/oauth2/token"
SIGNATURE_HEADER = "x-twitter-webhooks-signature"


def _digest(secret: str, message: bytes) -> str:
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(mac).decode()


def crc_response(settings: Settings, crc_token: str) -> dict[str, str]:
    """The answer to X's challenge-response check."""
    if not crc_token:
        raise PayloadError("missing crc_token")
    return {"response_token": _digest(settings.consumer_secret, crc_token.encode())}


@dataclass(frozen=True, slots=True)
class XSignature:
    """`x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer_secret, body)>`."""

    secret_key: str = "consumer_secret"

    def check_settings(self, settings: Settings) -> None:
        """Any non-empty string is a usable HMAC key."""

    def verify(self, settings: Settings, body: bytes, headers: Headers) -> None:
        given = headers.get(SIGNATURE_HEADER, "")
        if not given:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        expected = _digest(getattr(settings, self.secret_key), body)
        if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            raise SignatureError("signature does not match")


def normalise(payload: Any, _headers: Headers) -> list[NormalisedEvent]:
    if not isinstance(payload, Mapping):
        raise PayloadError("body must be a JSON object")
    favourites = payload.get("favorite_events") or []
    if not favourites:
        return []  # other Account Activity events (tweets, follows, …) carry no likes
    subscribed = str(field_of(payload, "for_user_id"))
    if not isinstance(favourites, list):
        raise PayloadError("favorite_events must be a list")
    found = []
    for item in favourites:
        actor = str(field_of(item, "user", "id_str"))
        owner = str(field_of(item, "favorited_status", "user", "id_str"))
        if subscribed not in (actor, owner):
            continue
        status = field_of(item, "favorited_status", "id_str")
        text = item["favorited_status"].get("text")
        found.append(event(
            event_id=field_of(item, "id"), platform="x", kind="like", actor_id=actor,
            content_id=status, owner_id=owner,
            occurred_at=_when(item),
            url=f"https://x.com/i/web/status/{status}",
            title=text[:512] if isinstance(text, str) and text else None))
    return found


def _when(item: Mapping[str, Any]) -> int | datetime:
    """`timestamp_ms` (a number, or digits in a string), else `created_at` in X's
    `Sat Oct 03 14:12:09 +0000 2026` form."""
    stamp = item.get("timestamp_ms")
    if isinstance(stamp, str) and stamp.isascii() and stamp.isdigit() and len(stamp) < 19:
        stamp = int(stamp)
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        return stamp
    try:
        return datetime.strptime(str(field_of(item, "created_at")), "%a %b %d %H:%M:%S %z %Y")
    except ValueError:
        raise PayloadError("favorite event has no usable timestamp_ms or created_at") from None


def reply(payload: Any, events: Sequence[NormalisedEvent]) -> dict[str, Any]:
    subscribed = str(payload.get("for_user_id", "")) if isinstance(payload, Mapping) else ""
    by_user = sum(e.actor_id == subscribed for e in events)
    return {"accepted": len(events), "by_user": by_user, "of_user": len(events) - by_user}


CONNECTOR = WebhookConnector(
    name="x",
    verifier=XSignature(),
    normalise=normalise,
    config_keys=("consumer_secret",),
    reply=reply,
    accepted_status=200,  # X retries a delivery answered with anything but 200
)


# --- the poller -----------------------------------------------------------------------------

@dataclass
class XPoller:
    """Liked tweets of linked X accounts through tweepy."""

    client_id: str
    client_secret: str = field(repr=False)
    api_base: str = ""
    poll_seconds: int = 900
    window_requests: int = 75
    window_seconds: int = 900
    max_pages: int = 5
    platform: str = "x"
    vault: Vault = field(kw_only=True, repr=False)

    @classmethod
    def from_config(cls, config: Config) -> XPoller:
        section = PLATFORM.section(config)
        return cls(section.client_id, section.client_secret, section.api_base,
                   section.poll_seconds, section.window_requests,
                   section.window_seconds, section.max_pages,
                   vault=vault(config))

    def client(self, token: str) -> tweepy.Client:
        import tweepy

        client = tweepy.Client(bearer_token=token, wait_on_rate_limit=False)
        route(client.session, API, self.api_base)
        return client

    def fetch(self, account: Account, budget: int) -> Snapshot:
        import tweepy

        client = self.client(account.access_token)
        items: list[Item] = []
        token: str | None = None
        made = 0
        try:
            while made < min(budget, self.max_pages):
                made += 1
                page = client.get_liked_tweets(
                    account.remote_id, max_results=100, expansions=["author_id"],
                    pagination_token=token, user_auth=False)
                items += [_item(tweet) for tweet in page.data or []]
                token = (page.meta or {}).get("next_token")
                if not token:
                    return Snapshot(items, complete=True, requests=made)
        except tweepy.TooManyRequests as exc:
            raise RateLimited(_reset(exc), made) from None
        except tweepy.Unauthorized:
            raise TokenExpired("X refused the access token") from None
        except (tweepy.TwitterServerError, tweepy.HTTPException) as exc:
            raise TransientError(f"X answered {exc.response.status_code}") from None
        except requests.RequestException as exc:
            raise TransientError(f"X unreachable: {exc.__class__.__name__}") from None
        finally:
            client.session.close()
        return Snapshot(items, complete=False, requests=made)

    def refresh(self, account: Account) -> Tokens | None:
        with route(requests.Session(), API, self.api_base) as session:
            return oauth_refresh(session, API + TOKEN_PATH, self.client_id, self.client_secret,
                                 account.refresh_token)


def _item(tweet: Any) -> Item:
    text = getattr(tweet, "text", None)
    return Item(content_id=str(tweet.id), owner_id=str(tweet.author_id),
                url=f"https://x.com/i/web/status/{tweet.id}",
                title=text[:512] if text else None)


def _reset(exc: tweepy.TooManyRequests) -> datetime | None:
    return reset_time(exc.response.headers)


def poller(config: Config) -> XPoller | None:
    """The X poller, or None while `connectors.x.client_id` is not set."""
    return XPoller.from_config(config) if PLATFORM.section(config).client_id else None


@dataclass(frozen=True)
class XSettings:
    """`connectors.x`: the webhook is on with `consumer_secret`, linking and the poller with
    `client_id`."""

    consumer_secret: str = field(default="", repr=False)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    # poller: API base ("" = https://api.twitter.com), per-user window, pages per poll
    api_base: str = ""
    poll_seconds: int = 900
    window_requests: int = 75
    window_seconds: int = 900
    max_pages: int = 5
    requests_per_minute: int = 3000
    # linking (OAuth 2.0 + PKCE): "" = twitter.com/i/oauth2/authorize,
    # api.twitter.com/2/oauth2/token, api.twitter.com/2/users/me
    oauth_authorize_url: str = ""
    oauth_token_url: str = ""
    profile_url: str = ""


PLATFORM = Platform(
    name="x", display_name="X", settings=XSettings, webhook=CONNECTOR, poller=poller,
    linking=OAuthProvider(
        "https://twitter.com/i/oauth2/authorize", "https://api.twitter.com/2/oauth2/token",
        "https://api.twitter.com/2/users/me",
        ("tweet.read", "users.read", "like.read", "offline.access"), pkce=True,
        client_auth="basic", user_id=("data", "id"), username=("data", "username")),
)
