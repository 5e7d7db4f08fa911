"""Running the hub's aiohttp application until SIGINT or SIGTERM, with a clean stop, on
uvloop's event loop (`run`): its C transports and scheduling take about a fifth off the CPU the
hub spends per webhook."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import uvloop
from aiohttp import web

from hub.app import SHORTCUT, answer_webhooks_first

# The group-commit thread needs the GIL for moments between its database calls; with Python's
# default 5 ms switch interval it waits behind the busy event loop for each of them.
SWITCH_INTERVAL = 0.0002

Started = Callable[[str, asyncio.Event], Awaitable[None]]


def run(main: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run(main)` on a uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket on host:port (port 0: one the system picks), bound before the hub
    is built so that its links can name the address really listened on. With `reuse_port`
    the port is shared with the other processes that listen on it with SO_REUSEPORT
    (`flattr_hub.server_group`). OSError when it cannot listen there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host.strip("[]"), port), family=family, backlog=1024,
                                reuse_port=reuse_port)


def url_of(sock: socket.socket) -> str:
    """`http://host:port` of a listening socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(app: web.Application, sock: socket.socket, started: Started) -> None:
    """Serve `app` on the listening `sock` (`bind`), await `started(url, stop)` (it may run
    companions until `stop` is set, or set it itself), and on SIGINT/SIGTERM stop accepting,
    finish what is in flight and return."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    if SHORTCUT in app:
        answer_webhooks_first(runner)
    try:
        await web.SockSite(runner, sock).start()
        await started(url_of(sock), stop)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
