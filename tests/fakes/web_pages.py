"""A fake web site for discovery tests: serves fixed documents (HTML pages, RSS and Atom feeds)
and redirects at given paths. Serve it with tests.fakes.server.serve."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web

Page = tuple[str, str] | tuple[str, str, Mapping[str, str]]  # content type, body[, headers]


def site(pages: Mapping[str, Page], redirects: Mapping[str, str] | None = None,
         slow: Mapping[str, float] | None = None) -> web.Application:
    """An app answering each path of `pages` with its document, each path of `redirects` with a
    302 to its target, each path of `slow` only after that many seconds; 404 otherwise."""

    async def answer(request: web.Request) -> web.StreamResponse:
        path = request.path
        if slow and path in slow:
            await asyncio.sleep(slow[path])
        if redirects and path in redirects:
            raise web.HTTPFound(redirects[path])
        if path not in pages:
            raise web.HTTPNotFound()
        content_type, body, *headers = pages[path]
        return web.Response(text=body, content_type=content_type,
                            headers=dict(headers[0]) if headers else None)

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    return app
