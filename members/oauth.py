"""Linking platform accounts with OAuth 2 (and logging in with them): one declarative provider
table, the pending authorisations between redirect and callback, and the code-for-token and
profile requests.

The flow: `begin` stores a pending authorisation (the SHA-256 of a random `state`, the PKCE
code verifier sealed by the token vault, the redirect URI, what it is for) and returns the
platform's authorize URL. The browser comes back to the callback with `code` and `state`:
`take` takes the pending row (deleting it, so a state works once, and only before it
expires), and `prove` trades the code for tokens and reads the profile, giving a `Proof` of
the identity (`members.linking.complete` runs these steps and acts on the proof). The verifier
never leaves the server; the state is also kept in the browser's encrypted session by the web
layer, so a callback URL that was started in another browser is refused.

Identity ids are the ones the connectors use: X, Discord and GitHub numeric user ids,
SoundCloud user URNs (`soundcloud:users:<id>`), Mastodon `user@host`, Vimeo numeric user ids
(from the profile's `uri`, `/users/<id>`), Dailymotion user ids, YouTube channel ids, Flickr
NSIDs.

Flickr offers OAuth 1.0a only (its provider's `protocol`): its request-token → authorize →
access-token flow is `members.oauth1`, which shares the pending authorisations kept here.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
from sqlalchemy import Connection, delete, insert, select

from base.config import Settings
from base.inputs import parse_int
from base.public_net import Guard, refusal
from base.public_net_aiohttp import guarded_connector, unsafe_target
from base.tables.linking import oauth_pending
from base.vault import vault
from connectors import mastodon, registry
from connectors.platform import OAuthProvider, ProfilePath
from ledger.sql import utcnow

PENDING_MINUTES = 10
MAX_EXPIRES_IN = 999_999_999  # seconds: about 30 years
HOST_NAME = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)



class OAuthError(Exception):
    """The authorisation failed; the message is safe to show (no token, no secret)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Provider:
    """A platform people link with OAuth: its name and label, whether its tokens are stored for
    its poller, and its OAuth facts (`connectors.platform.OAuthProvider`, from its
    descriptor)."""

    platform: str
    label: str
    polled: bool
    oauth: OAuthProvider


PROVIDERS: dict[str, Provider] = {
    p.name: Provider(p.name, p.display_name, p.poller is not None, p.linking)
    for p in registry.linkable() if p.linking is not None}


@dataclass(frozen=True)
class Pending:
    """A pending authorisation taken by its callback."""

    purpose: str  # "link" or "login"
    platform: str
    instance: str
    user_id: int | None
    code_verifier: str | None = field(repr=False)
    redirect_uri: str


@dataclass(frozen=True)
class Proof:
    """What a completed authorisation proves: who the person is on the platform, and the
    tokens to act for them there."""

    platform: str
    platform_user_id: str
    username: str
    remote_id: str
    instance: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime | None
    token_secret: str | None = field(default=None, repr=False)  # OAuth 1.0a


def enabled(config: Settings) -> list[Provider]:
    """The providers people can link and log in with: those switched on by their settings
    (`client_id` configured; Mastodon: `connectors.mastodon.enabled`)."""
    return [p for p in PROVIDERS.values() if p.oauth.enabled(config.connectors[p.platform])]


def provider(config: Settings, platform: str) -> Provider:
    """The enabled provider for `platform`; OAuthError (404) when there is none."""
    found = next((p for p in enabled(config) if p.platform == platform), None)
    if found is None:
        raise OAuthError(f"linking {platform} accounts is not available on this hub", 404)
    return found


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def begin(conn: Connection, config: Settings, platform: str, purpose: str,
          user_id: int | None, redirect_uri: str, instance: str = "") -> tuple[str, str]:
    """Store a pending authorisation; return (the platform's authorize URL, the state)."""
    found = provider(config, platform)
    if found.oauth.per_instance:
        instance = _instance(instance)
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64) if found.oauth.pkce else None
    store_pending(conn, config, state, purpose, platform, instance, user_id, verifier,
                  redirect_uri)
    client_id, _ = _client(conn, config, found, instance, redirect_uri)
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
             "state": state}
    if found.oauth.scopes:
        query["scope"] = " ".join(found.oauth.scopes)
    if verifier:
        query.update(code_challenge=challenge(verifier), code_challenge_method="S256")
    query.update(found.oauth.authorize_params)
    return f"{endpoints(config, found, instance)[0]}?{urlencode(query)}", state


def store_pending(conn: Connection, config: Settings, state: str, purpose: str,
                  platform: str, instance: str, user_id: int | None, verifier: str | None,
                  redirect_uri: str) -> None:
    """Store a pending authorisation under the hash of `state`, `verifier` (the PKCE code
    verifier, or an OAuth 1.0a request token secret) sealed; drop the expired ones."""
    now = utcnow()
    conn.execute(delete(oauth_pending).where(oauth_pending.c.expires_at < now))
    conn.execute(insert(oauth_pending).values(
        state_hash=state_hash(state), purpose=purpose, platform=platform, instance=instance,
        user_id=user_id, code_verifier=verifier and vault(config).seal(verifier),
        redirect_uri=redirect_uri, created_at=now,
        expires_at=now + timedelta(minutes=PENDING_MINUTES)))


def take(conn: Connection, config: Settings, platform: str,
         state: str) -> Pending:
    """The pending authorisation of `state`, deleted so that it cannot be used again;
    OAuthError when there is none for `platform`, or it expired."""
    key = state_hash(state)
    row = conn.execute(select(oauth_pending).where(oauth_pending.c.state_hash == key)
                       .with_for_update()).first()
    if row is not None:
        conn.execute(delete(oauth_pending).where(oauth_pending.c.state_hash == key))
    if row is None or row.platform != platform or row.expires_at < utcnow():
        raise OAuthError("This sign-in link has expired or was already used. Please start "
                         "again.")
    verifier = row.code_verifier and vault(config).open(row.code_verifier)
    return Pending(row.purpose, row.platform, row.instance, row.user_id, verifier,
                   row.redirect_uri)


def credentials(conn: Connection, config: Settings, pending: Pending) -> tuple[str, str]:
    """(client id, client secret) for the pending authorisation's platform (and instance)."""
    return _client(conn, config, PROVIDERS[pending.platform], pending.instance,
                   pending.redirect_uri)


async def prove(config: Settings, pending: Pending, client: tuple[str, str],
                code: str) -> Proof:
    """Trade `code` for tokens and read the profile they open."""
    found = PROVIDERS[pending.platform]
    _, token_url, profile_url = endpoints(config, found, pending.instance)
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT,
                                     connector=_connector(config, found)) as http:
        tokens = await _token(http, found, token_url, client, pending, code)
        profile = await _profile(http, found, profile_url, str(tokens["access_token"]))
    user_id = value_at(profile, found.oauth.user_id)
    try:
        platform_user_id = found.oauth.identity(user_id, pending.instance)
    except ValueError:
        raise OAuthError("The platform's profile answer lacks the account id.", 502) from None
    return Proof(
        platform=found.platform, platform_user_id=platform_user_id,
        username=value_at(profile, found.oauth.username),
        remote_id=value_at(profile, found.oauth.remote_id or found.oauth.user_id),
        instance=pending.instance,
        access_token=str(tokens["access_token"]), refresh_token=tokens.get("refresh_token"),
        expires_at=_expires_at(tokens.get("expires_in")))


def _expires_at(expires_in: Any) -> datetime | None:
    """When a token whose `expires_in` is a plain count of seconds (ASCII digits, at most about
    30 years) expires; anything else is taken as no expiry rather than failing the link."""
    try:
        return utcnow() + timedelta(seconds=parse_int(str(expires_in), high=MAX_EXPIRES_IN))
    except ValueError:
        return None


def _connector(config: Settings, found: Provider) -> aiohttp.TCPConnector | None:
    """The public-address guard's connector for a member-chosen instance (unless `api_base`
    sends its requests to a configured place); None: aiohttp's own, for fixed endpoints."""
    if found.oauth.per_instance and not config.connectors[found.platform].api_base:
        return guarded_connector(Guard.from_config(config))
    return None


def challenge(verifier: str) -> str:
    """The PKCE S256 code challenge of `verifier`."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _instance(instance: str) -> str:
    """The instance's https URL. The hub calls it from the server, so only public-looking
    host names are taken: no IP addresses, ports or single-label names."""
    host = mastodon.host_of(instance.strip()) if instance.strip() else ""
    if not HOST_NAME.match(host) or host.endswith((".local", ".localhost", ".internal")):
        raise OAuthError("Give your Mastodon server's address, e.g. mastodon.social.")
    return mastodon.instance_url(host)


def endpoints(config: Settings, found: Provider,
              instance: str) -> tuple[str, str, str]:
    """(authorize, token, profile) URLs of `found`: configured ones first, else its own."""
    section = config.connectors[found.platform]
    defaults = (found.oauth.authorize_url, found.oauth.token_url, found.oauth.profile_url)
    if found.oauth.per_instance:
        base = (section.api_base or instance).rstrip("/")
        urls = [base + path for path in defaults]
    else:
        urls = [getattr(section, key) or default
                for key, default in zip(found.oauth.config_keys, defaults, strict=True)]
    return urls[0], urls[1], urls[2]


def _client(conn: Connection, config: Settings, found: Provider, instance: str,
            redirect_uri: str) -> tuple[str, str]:
    if found.oauth.per_instance:
        try:
            return mastodon.app_credentials(conn, instance, config, redirect_uri)
        except Exception as exc:  # Mastodon.py wraps every failure in its own error types
            if refusal(exc) is not None:
                raise OAuthError(f"{mastodon.host_of(instance)} is not a public address this "
                                 "hub may connect to; check the address.") from None
            raise OAuthError(f"{mastodon.host_of(instance)} could not be reached or did not "
                             "register this hub; check the address.") from None
    section = config.connectors[found.platform]
    return section.client_id, section.client_secret


async def _token(http: aiohttp.ClientSession, found: Provider, url: str,
                 client: tuple[str, str], pending: Pending, code: str) -> dict[str, Any]:
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": pending.redirect_uri, "client_id": client[0]}
    headers = {"Accept": "application/json"}
    if found.oauth.client_auth == "basic":
        pair = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    else:
        form["client_secret"] = client[1]
    if pending.code_verifier:
        form["code_verifier"] = pending.code_verifier
    body = await _json(http.post(url, data=form, headers=headers), found)
    if not isinstance(body.get("access_token"), str):
        raise OAuthError(f"{found.label} did not accept the sign-in "
                         f"({str(body.get('error', 'no token'))[:60]}). Please try again.")
    return body


async def _profile(http: aiohttp.ClientSession, found: Provider, url: str,
                   token: str) -> dict[str, Any]:
    authorization = f"{found.oauth.profile_scheme} {token}"
    return await _json(http.get(url, headers={"Authorization": authorization,
                                              "Accept": "application/json"}), found)


async def _json(request: Any, found: Provider) -> dict[str, Any]:
    try:
        async with request as response:
            if response.status >= 500:
                raise OAuthError(f"{found.label} is not answering properly; try again later.",
                                 502)
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        if unsafe_target(exc) is not None:
            raise OAuthError(f"{found.label}: that server is not at a public address this hub "
                             "may connect to.", 502) from None
        raise OAuthError(f"{found.label} could not be reached; try again later.", 502) from None
    if not isinstance(body, dict):
        raise OAuthError(f"{found.label} gave an answer this hub does not understand.", 502)
    return body


def value_at(document: Mapping[str, Any], path: ProfilePath) -> str:
    """The non-empty scalar at `path` in `document` as text; OAuthError (502) if there is none."""
    node: Any = document
    for key in path:
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and len(node) > key else None
        else:
            node = node.get(key) if isinstance(node, Mapping) else None
    if node is None or isinstance(node, Mapping | list) or str(node) == "":
        raise OAuthError("The platform's profile answer lacks the account id.", 502)
    return str(node)
