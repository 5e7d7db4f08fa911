"""Linking Flickr accounts with OAuth 1.0a (Flickr offers no OAuth 2).

1. `begin` asks Flickr for a request token (signed with the app's `api_key` and `api_secret`,
   `oauth_callback` = the hub's callback URL), stores a pending authorisation under the hash of
   the request token — the token is this flow's `state`: the browser brings it back as
   `oauth_token` — with the request token secret sealed by the token vault, and returns
   Flickr's `authorize?oauth_token=…&perms=read` URL.
2. The callback brings `oauth_token` and `oauth_verifier`; the pending row is taken once
   (`members.oauth.take`), and `prove` trades the verifier for the access token, signed with
   the request token and its secret. Flickr's answer carries the identity (`user_nsid`,
   `username`) and the token and token secret the poller signs with (stored sealed).

The requests go through `flickrapi`'s OAuth interface (requests-oauthlib underneath), in a
thread, to the configured endpoints (`connectors.flickr.oauth_*_url`; "" = Flickr's own).
Nothing here logs or shows a token or secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import requests

from base.config import Settings
from connectors.flickr import NSID
from members.oauth import (
    PROVIDERS,
    OAuthError,
    Pending,
    Proof,
    endpoints,
    provider,
    store_pending,
    value_at,
)

if TYPE_CHECKING:
    import flickrapi

HTTP_TIMEOUT = 10.0
T = TypeVar("T")


async def begin(run: Callable[..., Awaitable[Any]], config: Settings, platform: str,
                purpose: str, user_id: int | None, redirect_uri: str) -> tuple[str, str]:
    """Get a request token and store the pending authorisation (`run(fn, *args)` runs
    `fn(conn, *args)` in a transaction); (the authorize URL, the state: the request token)."""
    found = provider(config, platform)
    authorize_url, _, request_token_url = endpoints(config, found, "")
    token, secret = await _in_thread(_request_token, config, request_token_url, redirect_uri)
    await run(store_pending, config, token, purpose, platform, "", user_id, secret,
              redirect_uri)
    return f"{authorize_url}?{urlencode({'oauth_token': token, 'perms': 'read'})}", token


async def prove(config: Settings, pending: Pending, token: str,
                verifier: str) -> Proof:
    """Trade the request token `token` and the callback's `verifier` for the access token."""
    found = PROVIDERS[pending.platform]
    if not pending.code_verifier:
        raise OAuthError("This sign-in link has expired or was already used. Please start "
                         "again.")
    _, access_token_url, _ = endpoints(config, found, "")
    answer = await _in_thread(_access_token, config, access_token_url, token,
                              pending.code_verifier, verifier)
    nsid = value_at(answer, found.oauth.user_id)
    if not NSID.fullmatch(nsid):
        raise OAuthError("Flickr's answer lacks the account id.", 502)
    return Proof(platform=found.platform, platform_user_id=nsid,
                 username=value_at(answer, found.oauth.username), remote_id=nsid, instance="",
                 access_token=value_at(answer, ("oauth_token",)), refresh_token=None,
                 expires_at=None, token_secret=value_at(answer, ("oauth_token_secret",)))


def _client(config: Settings) -> flickrapi.FlickrAPI:
    import flickrapi

    section = config.connectors["flickr"]
    api = flickrapi.FlickrAPI(section.api_key, section.api_secret,
                              store_token=False, timeout=HTTP_TIMEOUT)
    # the library's session is one for every instance of its class: each client its own
    api.flickr_oauth.session = requests.Session()
    return api


def _request_token(config: Settings, url: str, callback: str) -> tuple[str, str]:
    oauth = _client(config).flickr_oauth
    oauth.REQUEST_TOKEN_URL = url
    try:
        oauth.get_request_token(oauth_callback=callback)
    finally:
        oauth.session.close()
    return str(oauth.resource_owner_key), str(oauth.resource_owner_secret)


def _access_token(config: Settings, url: str, token: str, secret: str,
                  verifier: str) -> dict[str, str]:
    oauth = _client(config).flickr_oauth
    oauth.ACCESS_TOKEN_URL = url
    oauth.resource_owner_key, oauth.resource_owner_secret = token, secret
    oauth.verifier = verifier
    try:
        return oauth.parse_oauth_response(oauth.do_request(url))
    finally:
        oauth.session.close()


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking Flickr request; its failures as OAuthErrors safe to show."""
    from flickrapi.exceptions import FlickrError

    try:
        return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))
    except FlickrError:
        raise OAuthError("Flickr did not accept the sign-in. Please try again.") from None
    except requests.RequestException:
        raise OAuthError("Flickr could not be reached; try again later.", 502) from None
    except (KeyError, ValueError, UnicodeDecodeError):
        raise OAuthError("Flickr gave an answer this hub does not understand.", 502) from None
