"""HTTP helpers the pollers share: sending a client library's requests to a local fake (tests,
benchmarks), reading a rate limit's reset time, and the OAuth 2 refresh grant."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from connectors.poll_types import RateLimited, Tokens, TransientError
from ledger.sql import utcnow

HTTP_TIMEOUT = 10.0


class RouteAdapter(HTTPAdapter):
    """A transport adapter that sends requests for one origin to another (a local fake in
    tests and benchmarks): mounted on a client library's own `requests.Session`, so the
    library's real code builds and sends every request."""

    def __init__(self, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        parts = urlsplit(target.rstrip("/"))
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((self._scheme, self._netloc, self._prefix + parts.path,
                                  parts.query, parts.fragment))
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super().send(request, **kwargs)


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
                  now: datetime | None = None) -> Tokens | None:
    """The OAuth 2 refresh grant (form-encoded, client credentials as HTTP Basic). None when
    the grant is refused (the refresh token is used up or revoked)."""
    if not refresh_token:
        return None
    try:
        response = session.post(token_url, data={"grant_type": "refresh_token",
                                                 "refresh_token": refresh_token,
                                                 "client_id": client_id},
                                auth=(client_id, client_secret), timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        raise TransientError(f"token refresh failed: {exc.__class__.__name__}") from None
    if response.status_code in (400, 401, 403):
        return None
    if response.status_code == 429:
        raise RateLimited(reset_time(response.headers))
    if not response.ok:
        raise TransientError(f"token refresh answered {response.status_code}")
    body = response.json()
    expires = body.get("expires_in")
    moment = (now or utcnow()) + timedelta(seconds=int(expires)) if expires else None
    return Tokens(str(body["access_token"]), body.get("refresh_token"), moment)
