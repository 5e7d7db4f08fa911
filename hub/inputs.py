"""HTTP input shared by every handler: form bodies read once, before any handler, and refused
with 400 when they can not be read (garbage multipart, a urlencoded body that is not UTF-8) or
when they or the query hold a NUL character (no field of ours can, and PostgreSQL refuses it in
a query, which would be a 500), and whole numbers from the path and the query (ASCII digits
within 64 bits; anything else is 404 for a path, the default for a query)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from base.inputs import INT64_MAX, parse_int

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@web.middleware
async def form_bodies(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
    """Parse a form body once (aiohttp keeps the result for every later `request.post()`);
    400 when it can not be parsed. Installed by `hub.web.install` between the session and the
    CSRF middlewares, which webhooks (reading their raw bytes) skip."""
    if any("\x00" in key or "\x00" in value for key, value in request.query.items()):
        raise web.HTTPBadRequest(reason="the query must not hold NUL characters")
    if (request.method in WITH_BODY and request.content_type in FORM_TYPES
            and not request.path.startswith("/webhooks/")):
        try:
            await request.post()
        except web.HTTPException:
            raise
        except Exception:
            raise web.HTTPBadRequest(reason="the form body can not be read: it must be "
                                            "UTF-8 form data") from None
        form = await request.post()
        if any("\x00" in key or (isinstance(value, str) and "\x00" in value)
               for key, value in form.items()):
            raise web.HTTPBadRequest(reason="the form must not hold NUL characters")
    return await handler(request)


def path_int(request: web.Request, name: str) -> int:
    """The path's `{name}` as a positive 64-bit whole number; 404 otherwise."""
    try:
        return parse_int(request.match_info[name], 1, INT64_MAX)
    except ValueError:
        raise web.HTTPNotFound(reason="not found") from None


def query_int(request: web.Request, name: str, default: int, low: int = 1,
              high: int = 1_000_000) -> int:
    """The query's `name` as a whole number from `low` to `high`, else `default`."""
    try:
        return parse_int(request.query.get(name, ""), low, high)
    except ValueError:
        return default


def safe_reason(message: object, limit: int = 200) -> str:
    """An error message that may quote what a client sent, fit for an HTTP reason phrase (one
    line, printable, bounded) and the error page or JSON body built from it."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(message)[:limit])
    return text.encode("utf-8", "replace").decode("utf-8")
