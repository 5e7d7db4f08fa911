"""Error answers for browsers: the same status and message as the JSON error, as a page."""

from __future__ import annotations

from aiohttp import web

from hub.web.session import render

API_PREFIXES = ("/webhooks/", "/rest/", "/oauth/token", "/oauth/revoke", "/metrics", "/healthz",
                "/readyz")


def wants_html(request: web.Request) -> bool:
    return ("text/html" in request.headers.get("Accept", "")
            and not request.path.startswith(API_PREFIXES))


async def error_page(request: web.Request, status: int, message: str) -> web.StreamResponse:
    return await render(request, "error.html", {"status": status, "message": message}, status)
