"""REST v2 lists that never change for a caller: categories (Flattr's `text`, and our earlier
`name` beside it), languages, and the caller's own rate limit (which this request does not
count against, and which carries no rate-limit headers: Flattr's is not rate limited)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from catalog.vocab import CATEGORIES, LANGUAGES
from hub.rest.common import USAGE, ApiError, reply, route


def routes(app: web.Application) -> None:
    route(app, "GET", "/categories", categories)
    route(app, "GET", "/languages", languages)
    route(app, "GET", "/rate_limit", rate_limit)


async def categories(_request: web.Request) -> web.Response:
    return reply([{"id": code, "text": name, "name": name} for code, name in CATEGORIES])


async def languages(_request: web.Request) -> web.Response:
    return reply([{"id": code, "text": name} for code, name in LANGUAGES])


async def rate_limit(request: web.Request) -> web.Response:
    usage = request.get(USAGE)
    if usage is None:
        raise ApiError(503, "temporarily_unavailable", "the rate limit cannot be read now")
    reset = datetime.fromtimestamp(usage.reset, UTC)
    return reply({"hourly_limit": usage.limit, "remaining_hits": usage.remaining,
                  "current_hits": usage.current, "reset_time_in_seconds": usage.reset,
                  "reset_time": reset.strftime("%a, %d %b %Y %H:%M:%S +0000 GMT")})
