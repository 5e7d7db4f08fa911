"""One spelling per route: a request whose path is not in its plain form (empty segments `//`,
dot segments, backslashes, control characters, or an encoded `/`, `\\` or `.` in the raw path)
is refused with 404 before any handler or check sees it, so no other spelling of a route can
reach a handler by a way its checks did not expect (`/ops/rq//requeue/…` once re-ran failed
jobs by GET)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

ENCODED = re.compile(r"%(2[fFeE]|5[cC]|[01][0-9a-fA-F]|7[fF])")
SUSPECT = ("//", "\\", "/./", "/../")


def plain(raw_path: str, path: str) -> bool:
    """Whether the request path is written in its one plain form."""
    if "%" in raw_path and ENCODED.search(raw_path):
        return False
    if any(part in path for part in SUSPECT) or path.endswith(("/.", "/..")):
        return False
    return not any(char < " " or char == "\x7f" for char in path)


@web.middleware
async def plain_paths(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
    if not plain(request.raw_path.partition("?")[0], request.path):
        raise web.HTTPNotFound(reason="no such page (write the path without // . .. or \\)")
    return await handler(request)
