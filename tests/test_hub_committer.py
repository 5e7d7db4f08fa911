"""Group commit: concurrent submissions share stores; failures reach every waiter; the after
hook follows every commit without overlapping itself."""

import asyncio
import threading
import time

import pytest

from hub.committer import GroupCommit


async def test_concurrent_submissions_share_one_store():
    stored: list[list[int]] = []
    committer = GroupCommit(stored.append, lambda: None, max_batch=100, wait=0.01)
    committer.start()
    await asyncio.gather(*(committer.submit([n]) for n in range(30)))
    await committer.close()
    assert sorted(n for group in stored for n in group) == list(range(30))
    assert len(stored) < 5


async def test_max_batch_bounds_a_group():
    stored: list[list[int]] = []
    committer = GroupCommit(stored.append, lambda: None, max_batch=4, wait=0.01)
    committer.start()
    await asyncio.gather(*(committer.submit([n]) for n in range(10)))
    await committer.close()
    assert max(len(group) for group in stored) <= 4
    assert sum(len(group) for group in stored) == 10


async def test_a_failed_store_fails_every_waiter_of_its_group_and_nothing_after():
    calls = []

    def store(items):
        calls.append(items)
        if len(calls) == 1:
            raise OSError("disk full")

    committer = GroupCommit(store, lambda: None, max_batch=100, wait=0.01)
    committer.start()
    results = await asyncio.gather(*(committer.submit([n]) for n in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    await committer.submit([9])
    await committer.close()
    assert calls[-1] == [9]


async def test_after_follows_every_commit_and_never_overlaps():
    """The hook's own record, checked after close: an assert inside the hook would only be
    logged by the committer, never fail the test."""
    events: list[str] = []
    running = threading.Lock()
    overlaps: list[int] = []

    def store(items):
        events.append("commit")

    def after():
        if not running.acquire(blocking=False):
            overlaps.append(len(events))
            return
        events.append("after")
        time.sleep(0.05)
        running.release()

    committer = GroupCommit(store, after, max_batch=1, wait=0)
    committer.start()
    for n in range(5):
        await committer.submit([n])
        await asyncio.sleep(0.01)
    await committer.close()
    assert overlaps == []
    assert 2 <= events.count("after") < 5
    assert events[-1] == "after"  # the last commit was followed by a call


async def test_submissions_after_close_are_refused():
    committer = GroupCommit(lambda items: None, lambda: None, max_batch=10, wait=0)
    committer.start()
    await committer.close()
    with pytest.raises(RuntimeError, match="shutting down"):
        await committer.submit([1])


async def test_a_group_is_taken_once_the_loop_brings_no_more_not_after_the_whole_wait():
    stored: list[list[int]] = []
    committer = GroupCommit(stored.append, lambda: None, max_batch=100, wait=600)
    committer.start()
    await asyncio.wait_for(asyncio.gather(*(committer.submit([n]) for n in range(5))), 60)
    await committer.close()
    assert stored == [[0, 1, 2, 3, 4]]
