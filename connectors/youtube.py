"""YouTube: a poller of each linked user's liked videos, through google-api-python-client.

`youtube.videos().list(part="snippet", myRating="like", maxResults=50, pageToken=…)` with the
user's OAuth token (scope `youtube.readonly`), page after page while `nextPageToken` is set,
for at most `max_pages` pages; snapshots are diffed (`connectors.polling`). A video is
identified by its `id`, its owner by `snippet.channelId` (the same form as a linked account's
identity, the `id` of `channels?mine=true`); the thing's URL is
`https://www.youtube.com/watch?v=<id>`, its title `snippet.title`. Ids that are not of
YouTube's form are skipped and logged. The list is the *Liked videos* playlist's order, most
recently liked first, so an unseen video below one seen before is an older like that an unlike
moved into the pages read, not a new one (`Snapshot.newest_first`).

Quota: every `videos.list` costs 1 unit of the project's daily quota (10,000 by default),
whatever the page size. The scheduler spends at most `requests_per_minute` requests a minute
(a poll's pages beyond the first are paid from the next minutes' budget), so a day costs
about `requests_per_minute * 1440` units (6 * 1440 = 8,640 with the default, leaving room for
linking's `channels.list`); raise `requests_per_minute` with the quota Google grants. A
403 `quotaExceeded` waits until the quota resets (midnight Pacific time), a 403
`rateLimitExceeded`/`userRateLimitExceeded` or a 429 backs off. A refused token (401) is
refreshed once at Google's token URL (client credentials in the form); if that is refused the
account is marked for relinking.

The client is built from the discovery document shipped with the library
(`static_discovery=True`); `connectors.youtube.api_base` is its `api_endpoint` (a local fake in
tests). The client is built once per poller; each poll's requests are executed with the
account's own httplib2 transport carrying its token as google-auth credentials that cannot
refresh themselves (a 401 surfaces as `RefreshError`: the shared poller logic refreshes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import requests

from base.config import Settings
from base.vault import Vault, vault
from connectors.liked_items import at, ident, page_list, parse_items, title
from connectors.platform import OAuthProvider, Platform
from connectors.poll_http import HTTP_TIMEOUT, MAX_ANSWER_BYTES, AnswerTooLarge, oauth_refresh
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
    import google_auth_httplib2
    import httplib2
    from googleapiclient.discovery import Resource
    from googleapiclient.errors import HttpError

TOKEN_URL = "https://oauth2.googleapis.com/token"
PAGE = 50  # videos.list's largest maxResults
VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
CHANNEL_ID = re.compile(r"UC[A-Za-z0-9_-]{22}")
PACIFIC = ZoneInfo("America/Los_Angeles")
QUOTA = {"quotaExceeded", "dailyLimitExceeded"}
RATE = {"rateLimitExceeded", "userRateLimitExceeded"}


@dataclass
class YouTubePoller:
    client_id: str
    client_secret: str = field(repr=False)
    api_base: str = ""
    token_url: str = ""
    poll_seconds: int = 3600
    max_pages: int = 2
    window_requests: int = 100  # quota is per project, not per user: a generous per-user cap
    window_seconds: int = 3600
    platform: str = "youtube"
    vault: Vault = field(kw_only=True, repr=False)
    _service: Resource | None = field(default=None, init=False, repr=False)

    def service(self) -> Resource:
        """The API client, built once: building parses the discovery document (about 15 ms,
        several times a poll's other costs). Its own transport is never used: every request
        is sent with the account's `authorized` one."""
        if self._service is None:
            import httplib2
            from googleapiclient.discovery import build

            options = {"api_endpoint": self.api_base.rstrip("/") + "/"} if self.api_base \
                else None
            self._service = build("youtube", "v3", http=httplib2.Http(timeout=HTTP_TIMEOUT),
                                  static_discovery=True, cache_discovery=False,
                                  client_options=options)
        return self._service

    def fetch(self, account: Account, budget: int) -> Snapshot:
        import httplib2
        from google.auth.exceptions import RefreshError, TransportError
        from googleapiclient.errors import HttpError
        from httplib2.decode import DecodeLimitError

        videos = self.service().videos()
        http = authorized(account.access_token)
        items: list[Item] = []
        token: str | None = None
        made = 0
        try:
            while made < min(budget, self.max_pages):
                made += 1
                page = videos.list(part="snippet", myRating="like", maxResults=PAGE,
                                   pageToken=token).execute(http=http, num_retries=0)
                items += parse_items(account, page_list(page, "items", "YouTube"), video)
                token = page.get("nextPageToken")
                if token is None:
                    return Snapshot(items, complete=True, requests=made, newest_first=True)
                if not isinstance(token, str) or not 0 < len(token) <= 256:
                    break  # a page token not of YouTube's form: read no further
        except RefreshError:
            raise TokenExpired("YouTube refused the access token") from None
        except HttpError as exc:
            raise refused(exc, made) from None
        except (httplib2.HttpLib2Error, TransportError, OSError, DecodeLimitError) as exc:
            raise TransientError(f"YouTube unreachable: {exc.__class__.__name__}") from None
        except ValueError:
            raise TransientError("YouTube answered something that is not JSON") from None
        finally:
            http.http.close()
        return Snapshot(items, complete=False, requests=made, newest_first=True)

    def refresh(self, account: Account) -> Tokens | None:
        with requests.Session() as session:
            return oauth_refresh(session, self.token_url or TOKEN_URL, self.client_id,
                                 self.client_secret, account.refresh_token, secret_in_body=True)


def authorized(token: str) -> google_auth_httplib2.AuthorizedHttp:
    """A transport sending `token` as google-auth credentials that cannot refresh themselves
    (a 401 surfaces as RefreshError; the shared poller logic refreshes)."""
    import google_auth_httplib2
    from google.oauth2.credentials import Credentials

    return google_auth_httplib2.AuthorizedHttp(Credentials(token=token), http=capped_http())


def capped_http() -> httplib2.Http:
    """An httplib2 transport that reads at most MAX_ANSWER_BYTES of an answer (AnswerTooLarge)
    and decompresses at most as much (httplib2's DecodeLimitError): httplib2 reads an answer
    whole, so the pollers' requests hook (`connectors.poll_http.cap_answer`) has no twin here."""
    return _capped_transport()(timeout=HTTP_TIMEOUT, decode_limit_hard=MAX_ANSWER_BYTES)


@cache
def _capped_transport() -> type[httplib2.Http]:
    """httplib2.Http with connections whose answers refuse to be read past the cap (built on
    first use: httplib2 is imported only by the pollers that use it)."""
    import http.client
    from urllib.parse import urlsplit

    import httplib2

    class CappedResponse(http.client.HTTPResponse):
        def read(self, amt: int | None = None) -> bytes:
            if amt is not None:
                return super().read(amt)
            data = super().read(MAX_ANSWER_BYTES + 1)
            if len(data) > MAX_ANSWER_BYTES:
                self.close()
                raise AnswerTooLarge
            return data

    connections = {
        "http": type("CappedHTTPConnection", (httplib2.HTTPConnectionWithTimeout,),
                     {"response_class": CappedResponse}),
        "https": type("CappedHTTPSConnection", (httplib2.HTTPSConnectionWithTimeout,),
                      {"response_class": CappedResponse})}

    class CappedHttp(httplib2.Http):
        def request(self, uri: str, *args: Any, **kwargs: Any) -> Any:
            # google-auth's AuthorizedHttp passes connection_type=None on
            kwargs["connection_type"] = (kwargs.get("connection_type")
                                         or connections.get(urlsplit(uri).scheme))
            return super().request(uri, *args, **kwargs)

    return CappedHttp


def video(entry: Any) -> Item:
    """One liked video of `videos.list` as an Item (BadItem when it is not YouTube's shape)."""
    content = ident(entry, "id", pattern=VIDEO_ID)
    return Item(content_id=content, owner_id=ident(entry, "snippet", "channelId",
                                                   pattern=CHANNEL_ID),
                url=f"https://www.youtube.com/watch?v={content}",
                title=title(entry, "snippet", "title"))


def refused(exc: HttpError, made: int, now: datetime | None = None) -> Exception:
    """The poll error for an HTTP error answer of the YouTube Data API."""
    status = exc.resp.status
    reasons = error_reasons(exc.content)
    if status == 401:
        return TokenExpired("YouTube refused the access token")
    if status == 403 and reasons & QUOTA:
        return RateLimited(quota_reset(now), made)
    if status == 429 or (status == 403 and reasons & RATE):
        return RateLimited(None, made)
    return TransientError(f"YouTube answered {status}")


def error_reasons(content: bytes) -> set[str]:
    """The `error.errors[].reason` values of a Google API error body."""
    try:
        body = json.loads(content)
    except (ValueError, TypeError):
        return set()
    errors = at(body, "error", "errors")
    return {str(e["reason"]) for e in errors or [] if isinstance(e, Mapping)
            and isinstance(e.get("reason"), str)} if isinstance(errors, list) else set()


def quota_reset(now: datetime | None = None) -> datetime:
    """The next midnight Pacific time (when YouTube's daily quota resets), as naive UTC."""
    moment = (now.replace(tzinfo=UTC) if now else datetime.now(UTC)).astimezone(PACIFIC)
    midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(),
                                tzinfo=PACIFIC)
    return midnight.astimezone(UTC).replace(tzinfo=None)


def poller(config: Settings) -> YouTubePoller | None:
    """The YouTube poller, or None while `connectors.youtube.client_id` is not set."""
    section = config.connectors["youtube"]
    if not section.client_id:
        return None
    return YouTubePoller(section.client_id, section.client_secret, section.api_base,
                         section.oauth_token_url, section.poll_seconds,
                         section.max_pages, vault=vault(config))


@dataclass(frozen=True)
class YouTubeSettings:
    """`connectors.youtube`: linking and the poller are on with `client_id` (a Google Cloud
    OAuth client). Each poll page costs 1 quota unit of 10,000 a day: about
    requests_per_minute * 1440 units a day (8,640)."""

    client_id: str = ""
    client_secret: str = ""
    api_base: str = ""  # "" = https://youtube.googleapis.com/
    poll_seconds: int = 3600
    max_pages: int = 2  # pages of 50 likes read per poll
    requests_per_minute: int = 6  # videos.list calls a minute, all accounts together
    # linking: "" = accounts.google.com/o/oauth2/v2/auth, oauth2.googleapis.com/token (the
    # poller refreshes there too), the channels?mine=true profile
    oauth_authorize_url: str = ""
    oauth_token_url: str = ""
    profile_url: str = ""


PLATFORM = Platform(
    name="youtube", display_name="YouTube", settings=YouTubeSettings, poller=poller,
    # Google gives a refresh token only to `access_type=offline`, and again (after the member
    # unlinked and links anew) only with `prompt=consent`
    linking=OAuthProvider(
        "https://accounts.google.com/o/oauth2/v2/auth", TOKEN_URL,
        "https://www.googleapis.com/youtube/v3/channels?mine=true&part=id,snippet",
        ("https://www.googleapis.com/auth/youtube.readonly",), pkce=True, client_auth="post",
        user_id=("items", 0, "id"), username=("items", 0, "snippet", "title"),
        authorize_params=(("access_type", "offline"), ("prompt", "consent"))),
)
