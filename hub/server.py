"""Running the hub's aiohttp application until SIGINT or SIGTERM, with a clean stop, on
uvloop's event loop (`run`): its C transports and scheduling take about a fifth off the CPU the
hub spends per webhook."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import uvloop
from aiohttp import web

# The group-commit thread needs the GIL for moments between its database calls; with Python's
# default 5 ms switch interval it waits behind the busy event loop for each of them.
SWITCH_INTERVAL = 0.0002

Started = Callable[[str, asyncio.Event], Awaitable[None]]


def run(main: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run(main)` on a uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def serve(app: web.Application, host: str, port: int, started: Started, *,
                reuse_port: bool = False) -> None:
    """Serve `app` on host:port, await `started(url, stop)` (it may run companions until `stop`
    is set, or set it itself), and on SIGINT/SIGTERM stop accepting, finish what is in flight
    and return. With `reuse_port` the port is shared with the other processes that listen on
    it with SO_REUSEPORT (`flattr_hub.server_group`)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        await started(f"http://{shown}:{bound[1]}", stop)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
