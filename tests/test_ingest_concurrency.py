"""Two batches recorded at the same moment by two transactions (two drain lanes or two workers on
PostgreSQL): a like in one and its unlike in the other must end as an unliked flattr, whichever
commits first. Without ingest's per-(giver, content) lock neither transaction sees the other's
uncommitted rows, and the flattr would stay."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, select, text

from ledger.ingest import IngestResult, ingest
from ledger.schema import flattrs
from tests.ledger_helpers import feed, make_user, star


def _lock_waiters(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar_one()


def test_a_like_and_its_unlike_in_concurrent_batches_end_unliked(engine, config):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE lets one writer at a time in")
    make_user(engine, config, "ana", budget=1000, funds=1000, github="1")
    make_user(engine, config, "bo", budget=1000, funds=1000, github="2")
    make_user(engine, config, "cy", github="9")
    # Someone else's flattr of the repository first: the thing exists, so the two batches
    # below insert no row that would make one wait for the other anyway.
    feed(engine, star("2", "repo", "9", "2026-06-01T10:00:00"))

    unliked: list[IngestResult] = []

    def unlike() -> None:
        with engine.begin() as conn:
            unliked.append(ingest(conn, [star("1", "repo", "9", "2026-06-01T12:05:00",
                                              kind="unlike")]))

    with engine.begin() as conn:
        liked = ingest(conn, [star("1", "repo", "9", "2026-06-01T12:00:00")])
        other = threading.Thread(target=unlike)
        other.start()
        deadline = time.monotonic() + 30
        while other.is_alive() and _lock_waiters(engine) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    other.join(timeout=60)

    assert list(liked.outcomes.values()) == ["flattred"]
    assert [list(result.outcomes.values()) for result in unliked] == [["unliked"]]
    with engine.connect() as conn:
        active = conn.execute(select(flattrs.c.giver_id).where(
            flattrs.c.retracted_at.is_(None))).scalars().all()
    assert len(active) == 1  # bo's only

