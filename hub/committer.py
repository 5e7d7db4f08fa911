"""Group commit: requests that arrive together are stored in one database transaction.

Each request hands its entries to `submit` and waits. A single background task takes
everything waiting (up to `max_batch` requests; before taking them it lets the event loop run
until a few rounds bring no further request, for at most `wait` seconds, so that the requests
whose bytes have arrived join the group but no time is spent idle),
stores it with one blocking call in a worker thread, answers every waiter, and then runs the
`after` hook (waking the queue) in a thread of its own, so a slow or unreachable queue never
holds up commits. Calls of `after` never overlap and start at most once per `after_every`
seconds; every commit is followed by a call that starts after it (commits made meanwhile share
the next call), so under load the queue is woken a few dozen times a second, not per commit.
While one group is being stored the next one gathers, so the cost of a commit is shared by all
requests that arrived meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

import structlog

Item = TypeVar("Item")
# Event-loop rounds without a new request after which a group is taken as complete: a request
# whose bytes had arrived reaches `submit` within a few rounds.
IDLE_ROUNDS = 3

log = structlog.get_logger(__name__)


class GroupCommit(Generic[Item]):
    def __init__(self, store: Callable[[list[Item]], None], after: Callable[[], object], *,
                 max_batch: int, wait: float, after_every: float = 0.02) -> None:
        self._store = store
        self._after = after
        self._max_batch = max(1, max_batch)
        self._wait = max(0.0, wait)
        self._waiting: list[tuple[Sequence[Item], asyncio.Future[None]]] = []
        self._ready = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")
        self._after_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="after-commit")
        self._after_every = after_every
        self._after_running: asyncio.Future[object] | None = None
        self._after_timer: asyncio.TimerHandle | None = None
        self._after_last = float("-inf")
        self._after_again = False
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Store what is waiting, then stop."""
        self._closing = True
        self._ready.set()
        if self._task:
            await self._task
        while self._after_again or self._after_timer or (
                self._after_running and not self._after_running.done()):
            await asyncio.sleep(self._after_every / 4)
        self._executor.shutdown(wait=True)
        self._after_executor.shutdown(wait=True)

    async def submit(self, items: Sequence[Item]) -> None:
        """Return once `items` are committed; raise what the store raised if they were not."""
        if self._closing:
            raise RuntimeError("the hub is shutting down")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        self._ready.set()
        await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._ready.wait()
            if not self._waiting and self._closing:
                return
            if len(self._waiting) < self._max_batch and self._wait and not self._closing:
                await self._gather(loop.time() + self._wait)
            group = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            if not self._waiting:
                self._ready.clear()
            if not group:
                continue
            items = [item for items, _ in group for item in items]
            try:
                await loop.run_in_executor(self._executor, self._store, items)
            except Exception as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in group:
                if not future.done():
                    future.set_result(None)
            self._call_after()

    async def _gather(self, deadline: float) -> None:
        """Let the event loop run until it brings no further request (everything that had
        arrived has been read and submitted), the group is full, or `deadline` has come."""
        loop = asyncio.get_running_loop()
        seen = -1
        while (len(self._waiting) != seen and len(self._waiting) < self._max_batch
               and loop.time() < deadline):
            seen = len(self._waiting)
            for _ in range(IDLE_ROUNDS):
                await asyncio.sleep(0)

    def _call_after(self) -> None:
        """Note that a commit needs an `after` call; start one when none runs and the last one
        started at least `after_every` ago."""
        self._after_again = True
        if self._after_timer or (self._after_running and not self._after_running.done()):
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._after_last + self._after_every - loop.time())
        self._after_timer = loop.call_later(delay, self._start_after)

    def _start_after(self) -> None:
        loop = asyncio.get_running_loop()
        self._after_timer = None
        self._after_again = False
        self._after_last = loop.time()
        self._after_running = loop.run_in_executor(self._after_executor, self._after)
        self._after_running.add_done_callback(self._after_done)

    def _after_done(self, future: asyncio.Future[object]) -> None:
        if not future.cancelled() and future.exception():
            log.error("after_commit_failed", error=future.exception().__class__.__name__)
        if self._after_again:
            self._call_after()
