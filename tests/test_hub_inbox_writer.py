"""The hub's inbox writer keeps one connection for its group commits: a connection the
database dropped is replaced and the group still stored; a group that fails for another reason
fails, and the next one is stored."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from hub.inbox_writer import InboxWriter
from ledger.events import NormalisedEvent
from pipeline.inbox import Entry, claim, inbox


def entry(event_id: str, platform: str | None = "github") -> Entry:
    return Entry(NormalisedEvent(event_id=event_id, platform=platform, kind="like",
                                 actor_id="1", content_id="2", owner_id="3",
                                 occurred_at=datetime(2026, 1, 1)), None)


def stored(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(inbox.c.event_id).order_by(inbox.c.id)).scalars())


def test_a_dropped_connection_is_replaced_and_the_group_stored(engine, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server can drop a client's connection")
    writer = InboxWriter(engine)
    writer([entry("a")])
    with engine.connect() as conn:
        dropped = conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one()
    assert dropped >= 1
    writer([entry("b"), entry("c")])
    writer.close()
    assert stored(engine) == ["a", "b", "c"]


def test_a_failed_group_fails_and_the_next_is_stored(engine):
    writer = InboxWriter(engine)
    with pytest.raises(IntegrityError):
        writer([entry("c"), entry("no platform", platform=None)])
    writer([entry("d")])
    writer.close()
    assert stored(engine) == ["d"]


def test_what_is_stored_comes_back_unchanged(engine):
    """Rows go in as one COPY on PostgreSQL (text format: tab, newline, backslash and `\\N`
    are escapes there) and as a multi-row INSERT on SQLite; either way a worker's claim reads
    back the very events and request ids the hub accepted."""
    awkward = ["tab\there", "line\nbreak\r\n", "back\\slash", "\\N", "quote ' \" ;", "ünï ✓ 🎉",
               ""]
    entries = [Entry(NormalisedEvent(event_id=f"e{n}", platform="github", kind="like",
                                     actor_id="1", content_id=value or "c", owner_id="3",
                                     occurred_at=datetime(2026, 1, 1, 12, 30, 5, 123456),
                                     title=value, url=None),
                     request_id=value or None, hub_request_id=f"hub\t{n}")
               for n, value in enumerate(awkward)]
    writer = InboxWriter(engine)
    writer(entries)
    writer.close()
    with engine.connect() as conn:
        ids = conn.execute(select(inbox.c.request_id, inbox.c.hub_request_id)
                           .order_by(inbox.c.id)).all()
    assert ids == [(entry.request_id, entry.hub_request_id) for entry in entries]
    with engine.begin() as conn:
        claimed = claim(conn, 100)
    assert claimed.events() == [entry.event for entry in entries]
    assert claimed.request_ids == [entry.hub_request_id for entry in entries]
