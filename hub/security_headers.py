"""Security headers on every answer of the hub (pages, API, errors, static files), put there by
the hub's outermost middleware (`hub.app.answering`):

- `Content-Security-Policy`: scripts, styles, images and connections from the hub itself only
  (no inline script or style: the templates use /static files), no plugins, no `<base>`, and
  `frame-ancestors 'none'`;
- `X-Frame-Options: DENY` (the same for older browsers);
- `X-Content-Type-Options: nosniff`; `Referrer-Policy: same-origin`;
- `Strict-Transport-Security` when `hub.base_url` is https.

Exceptions, by path: the Flattr button's routes (`/js/button.js`, `/button/…`) are meant to be
used from other sites, so they carry no framing restriction; rq-dashboard (`/ops/rq`, operators
only) is a third-party app whose pages need inline scripts and styles, so its policy allows
those (still no framing, still scripts from the hub only otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping

from base import links
from base.config import Settings

STRICT = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'")
OPERATOR_DASHBOARD = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
                      "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                      "object-src 'none'; base-uri 'none'")
NO_FRAMES = "frame-ancestors 'none'"
EMBEDDABLE = ("/js/button.js", "/button/")
DASHBOARD = "/ops/rq"
EXCEPTIONS = (*EMBEDDABLE, DASHBOARD)  # the prefixes of every path with headers of its own


def adder(config: Settings) -> Callable[[str, MutableMapping[str, str]], None]:
    """`add(path, response_headers)`: put the headers of the answer at `path` among
    `response_headers` (a header already there is kept). The hub's outermost middleware
    (`hub.app`) calls it for every answer, rather than an `on_response_prepare` signal handler:
    a signal costs two coroutines per answer, about 3 % of the CPU of a webhook."""
    hsts = links.https(config)
    # Every path outside the exceptions gets the same headers: built once, not per answer.
    usual = tuple(headers("/", hsts).items())

    def add(path: str, found: MutableMapping[str, str]) -> None:
        for name, value in headers(path, hsts).items() if path.startswith(EXCEPTIONS) else usual:
            found.setdefault(name, value)

    return add


def headers(path: str, hsts: bool = False) -> dict[str, str]:
    """The security headers of the answer at `path`."""
    found = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
    if hsts:
        found["Strict-Transport-Security"] = "max-age=31536000"
    if path.startswith(EMBEDDABLE):
        found["Content-Security-Policy"] = STRICT
        return found
    dashboard = path == DASHBOARD or path.startswith(DASHBOARD + "/")
    found["Content-Security-Policy"] = f"{OPERATOR_DASHBOARD if dashboard else STRICT}; {NO_FRAMES}"
    found["X-Frame-Options"] = "DENY"
    return found
