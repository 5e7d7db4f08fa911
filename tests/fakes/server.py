"""A local HTTP server for fake platform APIs: an aiohttp application served from a thread on
127.0.0.1 (an ephemeral port), so that synchronous client libraries (tweepy, Mastodon.py,
requests) can talk to it from the test's own thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

from hub.server import bind, url_of


@contextmanager
def serve(app: web.Application | Callable[[str], web.Application]) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 for the duration of the block; yields its base URL. `app` may
    be a function of that URL (a hub whose links must name the address it is served at)."""
    sock = bind("127.0.0.1", 0)
    url = url_of(sock)
    if not isinstance(app, web.Application):
        app = app(url)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        box["runner"] = runner
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    ready.wait(10)
    try:
        yield url
    finally:
        runner = box["runner"]
        assert isinstance(runner, web.AppRunner)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
