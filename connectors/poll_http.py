"""HTTP helpers the pollers share: a cap on the size of a platform's answers, sending a client
library's requests to a local fake (tests, benchmarks), reading a rate limit's reset time, and
the OAuth 2 refresh grant."""

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
# A page of likes is tens of kilobytes; an answer past this is not one, whatever it claims.
MAX_ANSWER_BYTES = 4 * 1024 * 1024


class AnswerTooLarge(requests.RequestException):
    """A platform's answer held more than MAX_ANSWER_BYTES (once decompressed)."""

    def __init__(self) -> None:
        super().__init__(f"the answer holds more than {MAX_ANSWER_BYTES} bytes")


def cap_answer(response: requests.Response, *_args: Any, **_kwargs: Any) -> requests.Response:
    """A requests response hook: read the body now, at most MAX_ANSWER_BYTES of it after
    decompression (so neither a huge page nor a small gzip bomb fills the worker's memory),
    else close the connection and raise AnswerTooLarge. Hooks run before requests reads a
    body, whether or not the caller streams."""
    if getattr(response, "_content_consumed", False):  # read already (a redirect hop)
        return response
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            response.close()
            raise AnswerTooLarge
        chunks.append(chunk)
    response._content = b"".join(chunks)
    return response


def capped(session: requests.Session) -> requests.Session:
    """`session`, its every answer capped (`cap_answer`)."""
    if cap_answer not in session.hooks["response"]:
        session.hooks["response"].append(cap_answer)
    return session


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
    """`session`, capped (`capped`), sending its requests for `origin` (`https://host`) to
    `target` when that is set."""
    if target:
        session.mount(origin.rstrip("/") + "/", RouteAdapter(target))
    return capped(session)


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
