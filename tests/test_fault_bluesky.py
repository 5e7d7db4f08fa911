"""Fault test of the Jetstream consumer: `flattr-hub bluesky-stream` is SIGKILLed while a fake
Jetstream streams likes and their deletions, and started again. It resumes a few seconds
before the cursor it stored with the last batch, so what it stored before the kill comes again
(duplicates the ledger skips) and what came while it was dead is read from Jetstream's
history. A worker process drains the inbox through the queue as in production. Afterwards
every like is counted exactly once, every deletion is applied (no flattr is left for a like
that was deleted), none is lost, and the ledger's self-check holds. Run alone with
`pytest -m fault`."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest
from sqlalchemy import func, select

from base.tables.bluesky import bluesky_likes
from connectors import bluesky
from ledger import accounts, identities
from ledger.schema import events, flattrs, things
from ledger.schema import identities as identities_table
from ledger.verify import verify
from tests.fakes.jetstream import FakeJetstream, did, like, post_uri, tid, unlike
from tests.test_fault_durability import Processes, pending, wait_for

pytestmark = pytest.mark.fault

LIKERS, AUTHORS, LIKES, DELETES = 20, 5, 300, 100


def seed(engine, config) -> None:
    with engine.begin() as conn:
        for n in range(LIKERS + AUTHORS):
            uid = accounts.create_user(conn, f"member{n}")
            accounts.set_budget(conn, uid, 500, config.money)
            accounts.credit_funds(conn, uid, 1000, "test", f"fault:member{n}")
            identities.link(conn, uid, "bluesky", did(n), claim=True)


def plan() -> tuple[list[tuple[str, int, int, int]], set[tuple[str, str]]]:
    """The stream, in order: ("like", liker, post, rkey) and ("delete", liker, 0, rkey) of an
    earlier like; and the (liker DID, post URI) pairs whose like was deleted."""
    rng = random.Random(5)
    pairs = rng.sample([(liker, post) for liker in range(LIKERS) for post in range(60)], LIKES)
    steps: list[tuple[str, int, int, int]] = []
    deleted: set[tuple[str, str]] = set()
    to_delete = set(rng.sample(range(LIKES), DELETES))
    waiting: list[tuple[int, tuple[str, int, int, int]]] = []  # deletes, due after a like
    for n, (liker, post) in enumerate(pairs):
        steps.append(("like", liker, post, n + 1))
        if n in to_delete:
            waiting.append((n + rng.randint(0, 5), ("delete", liker, post, n + 1)))
            deleted.add((did(liker), post_uri(did(LIKERS + post % AUTHORS), post)))
        steps.extend(step for due, step in waiting if due <= n)
        waiting = [(due, step) for due, step in waiting if due > n]
    return steps + [step for _, step in waiting], deleted


def message(stream: FakeJetstream, step: tuple[str, int, int, int], rev: int) -> dict:
    kind, liker, post, rkey = step
    if kind == "like":
        return like(did(liker), tid(rkey), post_uri(did(LIKERS + post % AUTHORS), post),
                    stream.now(), rev)
    return unlike(did(liker), tid(rkey), stream.now(), rev)


def test_a_killed_consumer_resumes_and_counts_every_like_once(tmp_path, db_url, engine,
                                                               config) -> None:
    seed(engine, config)
    steps, deleted = plan()
    processes = Processes(tmp_path, db_url)
    with FakeJetstream() as stream:
        processes.env.update(
            FLATTR_CONNECTORS__BLUESKY__ENABLED="true",
            FLATTR_CONNECTORS__BLUESKY__JETSTREAM_URL=stream.url,
            FLATTR_CONNECTORS__BLUESKY__FLUSH_MS="20",
            FLATTR_CONNECTORS__BLUESKY__BATCH_SIZE="20",
            # Two drain lanes, as by default: a like and its unlike may be recorded by two
            # concurrent batches (tests/test_ingest_concurrency.py).
            FLATTR_CONNECTORS__BLUESKY__REPLAY_SECONDS="2",
            FLATTR_WORKER__DRAIN_CONNECTIONS="2")
        processes.start_redis()
        processes.start_worker()
        consumer = processes._spawn("bluesky-stream")
        third = len(steps) // 3
        killed = threading.Event()
        published = []

        def publish() -> None:
            for n, step in enumerate(steps):
                if n == 2 * third:
                    killed.wait(60)  # the last third comes after the kill, while it is down
                published.append(message(stream, step, n + 1))
                stream.publish(published[-1])
                time.sleep(0.004)

        try:
            wait_for(lambda: stream.connected() == 1, "the consumer connects", 60)
            publisher = threading.Thread(target=publish)
            publisher.start()
            wait_for(lambda: len(published) >= third and _cursor(engine) is not None,
                     "likes stored before the kill", 60)
            os.killpg(consumer.pid, signal.SIGKILL)
            consumer.wait()
            stored_at_kill = _cursor(engine)
            killed.set()
            wait_for(lambda: len(published) > 2 * third + 20, "likes sent while it is down")
            consumer = processes._spawn("bluesky-stream")
            publisher.join(120)
            last = published[-1]["time_us"]
            assert stored_at_kill < last  # killed mid-stream
            wait_for(lambda: _cursor(engine) == last, "the consumer reaches the end", 90)
            wait_for(lambda: pending(engine) == 0, "the worker drains the inbox", 90)
        finally:
            if consumer.poll() is None:
                os.killpg(consumer.pid, signal.SIGKILL)
                consumer.wait()
            processes.stop()
        assert len(stream.queries) == 2 and "cursor" in stream.queries[1]
        assert stream.sent > len(published)  # the restart was sent some messages again
    likes = {(did(liker), post_uri(did(LIKERS + post % AUTHORS), post))
             for kind, liker, post, _ in steps if kind == "like"}
    with engine.connect() as conn:
        recorded = conn.execute(select(events.c.event_id, func.count()).where(
            events.c.platform == "bluesky").group_by(events.c.event_id)).all()
        assert len(recorded) == LIKES + DELETES and all(n == 1 for _, n in recorded)
        rows = conn.execute(
            select(identities_table.c.platform_user_id, things.c.content_id,
                   flattrs.c.retracted_at)
            .join(things, things.c.id == flattrs.c.thing_id)
            .join(identities_table, identities_table.c.linked_user_id == flattrs.c.giver_id)
            .where(identities_table.c.platform == "bluesky")).all()
        assert verify(conn) == []
        assert conn.execute(select(func.count()).select_from(
            bluesky_likes)).scalar_one() == LIKES - DELETES
    active = {(r.platform_user_id, r.content_id) for r in rows if r.retracted_at is None}
    assert len(rows) == len({(r.platform_user_id, r.content_id) for r in rows})  # once each
    assert active == likes - deleted
    assert {(r.platform_user_id, r.content_id) for r in rows} <= likes


def _cursor(engine) -> int | None:
    with engine.connect() as conn:
        return bluesky.load_cursor(conn)
