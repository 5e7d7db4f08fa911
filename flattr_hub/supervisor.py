"""`up`'s supervision of the long-lived stream connectors (`connectors.streams`): each configured
stream runs as a child process (its own `flattr-hub` command, e.g. `discord-bot`, in a session
of its own) and is restarted when it stops, after a wait that starts at `streams.restart_ms`
and doubles up to `MAX_WAIT_SECONDS`. A run shorter than `streams.stable_seconds` is a quick
failure; after `streams.max_restarts` quick restarts in a row the stream is given up with one
line on stderr ("discord bot gave up after 5 restarts: <reason>", the reason being the last
line the child wrote on stderr) while the hub, the worker and the other streams keep running.
`stop` ends them all with the rest: SIGTERM to each child's process group, SIGKILL after
`STOP_SECONDS`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO

import structlog

from base.config import Settings
from connectors.streams import StreamListener
from flattr_hub.children import spawn

MAX_WAIT_SECONDS = 60.0
STOP_SECONDS = 20
POLL_SECONDS = 0.2
REASON_CHARS = 200
ERROR_PREFIX = "flattr-hub: error: "

log = structlog.get_logger(__name__)


class Run:
    """One run of a stream's process. Its stderr is passed on to ours line by line, and the
    last non-empty line is kept as the reason it stopped."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.process = spawn(argv, env=dict(env), stderr=subprocess.PIPE)
        self.started = time.monotonic()
        self.last_line = ""
        self._reader = threading.Thread(target=self._pass_on, args=(self.process.stderr,),
                                        daemon=True)
        self._reader.start()

    def _pass_on(self, stream: IO[bytes]) -> None:
        for raw in stream:
            sys.stderr.buffer.write(raw)
            sys.stderr.flush()
            if raw.strip():
                self.last_line = raw.decode(errors="replace").strip()
        stream.close()

    def reason(self) -> str:
        """Why the run ended, in one short line (once the process has exited)."""
        self._reader.join(timeout=5)
        line = self.last_line.removeprefix(ERROR_PREFIX)
        if not line:
            code = self.process.returncode
            line = (f"killed by {signal.Signals(-code).name}" if code < 0
                    else f"exited with status {code}")
        return line if len(line) <= REASON_CHARS else line[:REASON_CHARS - 1] + "…"

    def terminate(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)

    def wait(self) -> None:
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._reader.join(timeout=5)


class StreamSupervisor:
    """Runs `streams` as supervised children of the calling process until `stop`."""

    def __init__(self, streams: Sequence[StreamListener], config: Settings,
                 config_args: Sequence[str], env: Mapping[str, str],
                 say: Callable[[str], None]) -> None:
        settings = config.streams
        self.streams = list(streams)
        self.first_wait = max(0, settings.restart_ms) / 1000
        self.max_restarts = max(0, settings.max_restarts)
        self.stable_seconds = settings.stable_seconds
        self.config_args = list(config_args)
        self.env = env  # read at each start: `up` completes it once the hub listens
        self.say = say
        self.runs: dict[str, Run] = {}
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []  # the loop keeps only weak references

    def start(self, stop: asyncio.Event) -> None:
        """Start every stream, each supervised by a task on the running loop."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._supervise(stream, stop))
                       for stream in self.streams]

    def _argv(self, stream: StreamListener) -> list[str]:
        return [sys.executable, "-m", "flattr_hub.cli", *stream.command, *self.config_args]

    async def _supervise(self, stream: StreamListener, stop: asyncio.Event) -> None:
        quick = 0
        while not (stop.is_set() or self._stopping):
            run = self.runs[stream.name] = Run(self._argv(stream),
                                               dict(self.env, PYTHONUNBUFFERED="1"))
            while run.process.poll() is None:
                if stop.is_set():
                    return  # `stop()` ends it with the rest
                await asyncio.sleep(POLL_SECONDS)
            if stop.is_set() or self._stopping:
                return
            reason = await asyncio.to_thread(run.reason)
            if time.monotonic() - run.started >= self.stable_seconds:
                quick = 0
            if quick >= self.max_restarts:
                log.error("stream_gave_up", stream=stream.name, restarts=quick)
                self.say(f"{stream.label} gave up after {quick} restart"
                         f"{'' if quick == 1 else 's'}: {reason}")
                return
            wait = min(MAX_WAIT_SECONDS, self.first_wait * 2 ** min(quick, 16))
            quick += 1
            log.warning("stream_restart", stream=stream.name, restart=quick,
                        wait_seconds=wait, status=run.process.returncode)
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                continue
            return

    def terminate(self) -> None:
        """Start no further run and SIGTERM the running ones."""
        self._stopping = True
        for run in self.runs.values():
            run.terminate()

    def stop(self) -> None:
        """`terminate`, then wait for every run to end (SIGKILL after STOP_SECONDS)."""
        self.terminate()
        for run in self.runs.values():
            run.wait()

    def described(self) -> str:
        """The streams for `up`'s banner: ", the discord bot" or ""."""
        return "".join(f", the {stream.label}" for stream in self.streams)
