"""Group commit: requests that arrive together are stored in one database transaction.

Each request hands its entries to `submit` and waits. A single background task takes
everything waiting (up to `max_batch` requests; before taking them it lets the event loop run
until a few rounds bring no further request, for at most `wait` seconds, so that the requests
whose bytes have arrived join the group but no time is spent idle),
hands it to the commit thread, which stores it with one blocking call and answers every waiter
with one callback into the event loop (a thread of its own rather than an executor: no
executor and chained futures per group on the busy event loop), and has the `after`
hook (waking the queue) run in a thread of its own, so a slow or unreachable queue never holds
up commits. Calls of `after` never overlap and start at most once per `after_every` seconds;
every commit is followed by a call that starts after it (commits made meanwhile share the next
call), so under load the queue is woken a few dozen times a second, not per commit. The commit
thread, not the event loop, asks for that call: waking another thread can cost the waker its
CPU for a while on a busy machine, and the event loop is the thread that can least afford it.
While one group is being stored the next one gathers, so the cost of a commit is shared by all
requests that arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from queue import SimpleQueue
from typing import Generic, TypeVar

import structlog

Item = TypeVar("Item")
# Event-loop rounds without a new request after which a group is taken as complete: a request
# whose bytes had arrived reaches `submit` within a few rounds.
IDLE_ROUNDS = 3

log = structlog.get_logger(__name__)


Waiting = tuple[Sequence[Item], asyncio.Future[None]]


class GroupCommit(Generic[Item]):
    def __init__(self, store: Callable[[list[Item]], None], after: Callable[[], object], *,
                 max_batch: int, wait: float, after_every: float = 0.02) -> None:
        self._store = store
        self._max_batch = max(1, max_batch)
        self._wait = max(0.0, wait)
        self._waiting: list[Waiting[Item]] = []
        self._ready = asyncio.Event()
        self._groups: SimpleQueue[list[Waiting[Item]] | None] = SimpleQueue()
        self._thread = threading.Thread(target=self._commits, name="group-commit", daemon=True)
        self._stored: asyncio.Future[None] | None = None
        self._after = AfterCalls(after, after_every)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._after.start()
        self._thread.start()
        self._task = self._loop.create_task(self._run())

    async def close(self) -> None:
        """Store what is waiting, then stop."""
        self._closing = True
        self._ready.set()
        if self._task:
            await self._task
        self._groups.put(None)
        loop = asyncio.get_running_loop()
        if self._thread.is_alive():
            await loop.run_in_executor(None, self._thread.join)
        await loop.run_in_executor(None, self._after.close)

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
            self._stored = loop.create_future()
            self._groups.put(group)
            await self._stored

    def _commits(self) -> None:
        """The commit thread: store each group handed over, then answer its waiters and ask
        for an `after` call."""
        assert self._loop is not None
        while (group := self._groups.get()) is not None:
            error: Exception | None = None
            try:
                self._store([item for items, _ in group for item in items])
            except Exception as exc:
                error = exc
            else:
                self._after.request()
            self._loop.call_soon_threadsafe(self._answer, group, error)

    def _answer(self, group: list[Waiting[Item]], error: Exception | None) -> None:
        """In the event loop: settle the group's waiters, and let the next group go."""
        for _, future in group:
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
        if self._stored is not None and not self._stored.done():
            self._stored.set_result(None)

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


class AfterCalls:
    """Calls of `after` in a thread of its own: one starts after every `request()` (requests
    made while one waits share it), calls never overlap, and each starts at least `every`
    seconds after the one before. A call that raises is logged."""

    def __init__(self, after: Callable[[], object], every: float) -> None:
        self._after = after
        self._every = every
        self._changed = threading.Condition()
        self._wanted = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="after-commit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        with self._changed:
            self._wanted = True
            self._changed.notify()

    def close(self) -> None:
        """Make the call still wanted, then stop the thread (blocks until it has)."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        last = float("-inf")
        while True:
            with self._changed:
                while not (self._wanted or self._closing):
                    self._changed.wait()
                if not self._wanted:
                    return
            time.sleep(max(0.0, last + self._every - time.monotonic()))
            with self._changed:
                self._wanted = False
            last = time.monotonic()
            try:
                self._after()
            except Exception as exc:
                log.error("after_commit_failed", error=exc.__class__.__name__)
