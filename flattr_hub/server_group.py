"""More than one hub process on one port: `serve --processes N` and `up --processes N`.

The command's own process listens with SO_REUSEPORT and starts N-1 further `flattr-hub serve`
processes on the same address and port (the kernel spreads new connections over all of them).
Each is a complete hub with its own event loop, database connections and group commit, so the
machine's cores share the webhook load. The group stops together: when the first process is
told to stop (SIGINT or SIGTERM) it sends SIGTERM to the others at once, and each stops
accepting, answers the requests it has in flight and commits what is waiting; one that has not
stopped after `STOP_SECONDS` is killed. A process of the group that exits by itself stops the
whole group, and a further process whose first process has gone stops by itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from flattr_hub.children import spawn

STOP_SECONDS = 20
START_SECONDS = 60


class ServerGroup:
    """The further `serve` processes of a group of `processes` in all."""

    def __init__(self, processes: int, host: str, config_args: Sequence[str],
                 env: Mapping[str, str]) -> None:
        self.extra = processes - 1
        self.host = host
        self.config_args = list(config_args)
        self.env = dict(env, PYTHONUNBUFFERED="1")
        self.children: list[subprocess.Popen[bytes]] = []
        self.failed = ""
        self._terminated = False
        self._tasks: list[asyncio.Task[None]] = []

    def described(self) -> str:
        """How the group is announced after the URL ("" for one process)."""
        return f" with {self.extra + 1} processes" if self.extra else ""

    async def start(self, url: str, stop: asyncio.Event) -> None:
        """Start the further processes on the port `url` was bound to and return once each is
        listening; then watch them until `stop` is set, and stop them when it is. Sets `stop`
        (and `failed`) when one does not start or exits by itself."""
        if not self.extra:
            return
        port = urlsplit(url).port
        for _ in range(self.extra):
            self.children.append(spawn(
                [sys.executable, "-m", "flattr_hub.cli", *self.config_args, "serve",
                 "--host", self.host, "--port", str(port), "--reuse-port"],
                env=self.env, stdout=subprocess.PIPE))
        loop = asyncio.get_running_loop()
        for number, child in enumerate(self.children, start=2):
            try:
                line = await asyncio.wait_for(
                    loop.run_in_executor(None, child.stdout.readline),  # type: ignore[union-attr]
                    START_SECONDS)
            except TimeoutError:
                line = b""
            if b"listening" not in line:
                self.failed = f"hub process {number} did not start"
                stop.set()
                return
        self._tasks.append(loop.create_task(self._watch(stop)))
        self._tasks.append(loop.create_task(self._forward(stop)))

    async def _watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for number, child in enumerate(self.children, start=2):
                if child.poll() is not None:
                    self.failed = f"hub process {number} stopped unexpectedly"
                    stop.set()
                    return
            await asyncio.sleep(0.5)

    async def _forward(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._terminate()

    def _terminate(self) -> None:
        """SIGTERM every further process, once: a second SIGTERM would find a process that is
        stopping without its handler, and kill it with requests in flight."""
        if self._terminated:
            return
        self._terminated = True
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM every further process still running (unless done already), wait for them,
        and SIGKILL those still running after STOP_SECONDS."""
        self._terminate()
        for child in self.children:
            try:
                child.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            if child.stdout:
                child.stdout.close()


async def stop_with_parent(stop: asyncio.Event) -> None:
    """Set `stop` when the process that started this one has gone (a further process of a group
    whose first process was killed)."""
    parent = os.getppid()
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
            return
        await asyncio.sleep(1)
