"""Poison events (issue 11, finding 1): the door refuses an event that breaks the event rules
(400, nothing stored), and the worker quarantines an event it can not record, so every event
after it is still recorded; operators retry or discard it from the CLI and /ops; /healthz and
/metrics count it. The stream test sends 1,000 signed events through the hub with one poison
event in every 100."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from base.config import Settings
from flattr_hub.cli import main
from hub.simulate import standard_headers
from ledger import accounts, identities
from ledger.events import NormalisedEvent
from ledger.schema import events, flattrs
from ledger.sql import utcnow
from ledger.verify import verify
from members.logins import set_operator
from pipeline import inbox, quarantine
from pipeline.inbox import Entry
from tests.hub_helpers import METRICS_AUTH, RELAY_SECRET, reinstall
from tests.web_helpers import post_form, sign_up
from workers import jobs

pytest_plugins = ["tests.hub_fixtures"]

LIKE = {"type": "like", "platform": "soundcloud", "actor_id": "10", "content_id": "track-1",
        "owner_id": "20", "occurred_at": "2026-11-20T10:00:00Z",
        "url": "https://soundcloud.com/someone/track-1", "title": "A track"}


def seed(engine: Engine, config: Settings) -> None:
    """A funded giver (SoundCloud 10, GitHub 1) and a creator (SoundCloud 20, GitHub 2)."""
    with engine.begin() as conn:
        for name, pid in (("giver", "10"), ("maker", "20")):
            uid = accounts.create_user(conn, name)
            accounts.set_budget(conn, uid, 500, config.money)
            accounts.credit_funds(conn, uid, 2000, "test", f"test:{name}")
            identities.link(conn, uid, "soundcloud", pid, claim=True)


async def send(client: Any, payload: dict[str, Any] | bytes, message_id: str) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await client.post("/webhooks/relay", data=body,
                             headers=standard_headers(RELAY_SECRET, body, message_id))


def pending(engine: Engine) -> int:
    with engine.connect() as conn:
        return inbox.pending_count(conn)


def counted(engine: Engine, table: Any = flattrs) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.mark.parametrize("field, raw", [
    ("title", b'"\\ud800"'),                      # a lone surrogate (finding 1)
    ("title", b'"a\\u0000b"'),                    # NUL: PostgreSQL refuses it in text
    ("url", b'"javascript:alert(document.domain)//"'),  # finding 10: not a web link
    ("url", b'"https://exa mple.org/"'),
    ("content_id", json.dumps("x" * 513).encode()),
    ("actor_id", str(2**64).encode()),            # integer beyond 64 bits
    ("occurred_at", b'"0001-01-01T00:30:00+01:00"'),  # before the sane window (and year 0)
    ("occurred_at", b'"9999-12-31T23:30:00-01:00"'),  # after it (and year 10000)
    ("occurred_at", str(10**30).encode()),        # huge Unix milliseconds
    ("occurred_at", b'"2090-01-01T00:00:00Z"'),
])
async def test_the_door_refuses_an_event_that_breaks_the_rules(hub_client, engine, field, raw):
    body = json.dumps({**LIKE, field: "PLACEHOLDER"}).encode().replace(b'"PLACEHOLDER"', raw)
    reply = await send(hub_client, body, "msg_bad")
    assert reply.status == 400
    answer = await reply.json()
    assert answer["error"] == "invalid_request"
    description = answer["error_description"]
    assert field in description or "surrogate" in description  # JSON itself refuses those
    assert "\ud800" not in description and "javascript" not in description
    with engine.connect() as conn:
        assert inbox.pending_count(conn) == 0


async def test_a_valid_event_still_passes_the_door(hub_client, engine):
    reply = await send(hub_client, LIKE, "msg_good")
    assert reply.status == 202
    with engine.connect() as conn:
        assert inbox.pending_count(conn) == 1


def poison_row(engine: Engine, event_id: str) -> None:
    """An event stored before the door checked it (an older hub): its title holds a lone
    surrogate, which no database driver can encode."""
    event = NormalisedEvent.from_dict({**LIKE, "kind": "like", "event_id": event_id,
                                       "content_id": event_id})
    stored = json.dumps({**event.to_dict(), "title": "bad \ud800 title"})
    with engine.begin() as conn:
        conn.execute(inbox.inbox.insert().values(
            platform="soundcloud", event_id=event_id, event=stored, received_at=utcnow()))


# What refuses the stored lone surrogate: the worker decoding the stored row (orjson refuses
# it), or, past that, the driver encoding it (SQLite) or PostgreSQL parsing the batch's JSON.
REFUSALS = ("JSONDecodeError", "UnicodeEncodeError", "InvalidTextRepresentation")


def good(n: int) -> Entry:
    event = NormalisedEvent.from_dict({**LIKE, "kind": "like", "event_id": f"good-{n}",
                                       "content_id": f"track-{n}"})
    return Entry(event, None)


def test_a_poison_event_is_quarantined_and_blocks_nothing(worker_context, engine, hub_config):
    seed(engine, hub_config)
    inbox.store(engine, [good(n) for n in range(5)])
    poison_row(engine, "poison-1")
    inbox.store(engine, [good(n) for n in range(5, 12)])
    reinstall(worker_context, {"worker.batch_size": 8})
    totals = jobs.drain()
    assert totals["quarantined"] == 1
    assert counted(engine) == 12
    with engine.connect() as conn:
        assert inbox.pending_count(conn) == 0
        [held] = quarantine.listing(conn)
        assert quarantine.count(conn) == 1
        assert verify(conn) == []
    assert (held.platform, held.event_id, held.state, held.attempts) == (
        "soundcloud", "poison-1", "quarantined", 1)
    assert held.reason.startswith(REFUSALS) and "\ud800" not in held.reason
    assert held.first_seen == held.last_seen
    assert jobs.drain() == {"rows": 0}



def test_a_stored_row_that_is_not_an_event_is_quarantined_and_blocks_nothing(
        worker_context, engine, hub_config):
    """Rows are decoded inside the batch's guard: one that does not decode (a damaged row) is
    held like any poison event, and the rows around it are counted."""
    seed(engine, hub_config)
    inbox.store(engine, [good(n) for n in range(3)])
    with engine.begin() as conn:
        conn.execute(inbox.inbox.insert().values(
            platform="soundcloud", event_id="damaged-1", event='{"event_id": "damaged-1", ',
            received_at=utcnow()))
    inbox.store(engine, [good(n) for n in range(3, 6)])
    assert jobs.drain()["quarantined"] == 1
    assert counted(engine) == 6
    with engine.connect() as conn:
        assert inbox.pending_count(conn) == 0
        [held] = quarantine.listing(conn)
    assert (held.event_id, held.state) == ("damaged-1", "quarantined")
    assert held.reason.startswith("JSONDecodeError")

def test_retry_brings_it_back_and_it_is_quarantined_again(worker_context, engine, hub_config):
    seed(engine, hub_config)
    poison_row(engine, "poison-2")
    assert jobs.drain()["quarantined"] == 1
    with engine.begin() as conn:
        [held] = quarantine.listing(conn)
        quarantine.retry(conn, held.id)
        assert quarantine.count(conn) == 0 and inbox.pending_count(conn) == 1
        with pytest.raises(quarantine.NotQuarantined):
            quarantine.retry(conn, held.id)
    inbox.store(engine, [good(1)])
    assert jobs.drain()["quarantined"] == 1
    with engine.begin() as conn:
        [again] = quarantine.listing(conn)
        assert (again.id, again.attempts) == (held.id, 2)
        assert again.last_seen >= again.first_seen
        quarantine.discard(conn, held.id)
        assert quarantine.count(conn) == 0
        assert [d.id for d in quarantine.listing(conn, "discarded")] == [held.id]
    assert counted(engine) == 1


def test_cli_lists_retries_and_discards(worker_context, engine, hub_config, db_url, capsys,
                                        monkeypatch):
    monkeypatch.setenv("FLATTR_DATABASE_URL", db_url)
    monkeypatch.setenv("FLATTR_REDIS_URL", hub_config.redis.url)
    seed(engine, hub_config)
    poison_row(engine, "poison-3")
    poison_row(engine, "poison-4")
    jobs.drain()
    capsys.readouterr()
    assert main(["inbox", "quarantined", "--json"]) == 0
    # two drain lanes (PostgreSQL) may hold the two in either order
    listed = sorted(json.loads(capsys.readouterr().out), key=lambda row: row["event_id"])
    assert [row["event_id"] for row in listed] == ["poison-3", "poison-4"]
    assert main(["inbox", "retry", str(listed[0]["id"])]) == 0
    assert main(["inbox", "discard", str(listed[1]["id"])]) == 0
    capsys.readouterr()
    assert main(["inbox", "discard", str(listed[1]["id"])]) == 2
    with pytest.raises(SystemExit) as refused:
        main(["inbox", "retry", "9" * 40])
    assert refused.value.code == 2
    assert capsys.readouterr().err.count("\n") == 2
    with engine.connect() as conn:
        assert inbox.pending_count(conn) == 1 and quarantine.count(conn) == 0


async def test_healthz_and_metrics_count_quarantined_events(hub_client, worker_context, engine,
                                                            hub_config):
    seed(engine, hub_config)
    poison_row(engine, "poison-5")
    jobs.drain()
    health = await (await hub_client.get("/healthz")).json()
    assert (health["pending"], health["quarantined"]) == (0, 1)
    scraped = await (await hub_client.get("/metrics", headers=METRICS_AUTH)).text()
    assert "flattr_inbox_quarantined 1.0" in scraped


async def test_stream_of_1000_signed_events_with_one_poison_in_100(hub_client, worker_context,
                                                                  engine, hub_config):
    """1,000 signed relay events through the hub; every 100th is one the database refuses
    (a trigger raises for its content id, as a poison event would fail). 990 flattrs are
    recorded, 10 events quarantined, none lost or left pending."""
    seed(engine, hub_config)
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text(
                "CREATE TRIGGER poison BEFORE INSERT ON things WHEN NEW.content_id LIKE "
                "'poison-%' BEGIN SELECT RAISE(ABORT, 'poison event'); END"))
        else:
            conn.execute(text(
                "CREATE OR REPLACE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                "IF NEW.content_id LIKE 'poison-%' THEN RAISE EXCEPTION 'poison event' "
                "USING ERRCODE = 'data_exception'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER poison BEFORE INSERT ON things "
                              "FOR EACH ROW EXECUTE FUNCTION poison()"))
    try:
        reinstall(worker_context, {"worker.batch_size": 100})
        for chunk in range(0, 1000, 50):  # 50 at a time, as concurrent senders would
            replies = await asyncio.gather(*(
                send(hub_client, {**LIKE, "content_id": f"poison-{n}" if n % 100 == 50
                                  else f"track-{n}"}, f"msg_{n}")
                for n in range(chunk, chunk + 50)))
            assert [reply.status for reply in replies] == [202] * 50
        totals: Counter[str] = Counter()
        while pending(engine):  # a drain hands over after 5 s: run the next one, as RQ would
            totals.update(jobs.drain())
        assert (counted(engine), totals["quarantined"]) == (990, 10)
        with engine.connect() as conn:
            assert inbox.pending_count(conn) == 0
            assert sorted(h.event_id for h in quarantine.listing(conn)) == sorted(
                f"msg_{n}" for n in range(50, 1000, 100))
            assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 990
            assert verify(conn) == []
        print(f"\nstream: 1000 sent, {counted(engine)} flattrs, {totals['quarantined']} "
              f"quarantined, {totals['rows']} rows recorded")
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER poison" if conn.dialect.name == "sqlite"
                              else "DROP TRIGGER poison ON things"))


async def test_operators_retry_and_discard_on_ops(hub_client, worker_context, engine,
                                                  hub_config):
    seed(engine, hub_config)
    poison_row(engine, "poison-6")
    poison_row(engine, "poison-7")
    jobs.drain()
    await sign_up(hub_client, "olga")
    with engine.begin() as conn:
        set_operator(conn, accounts.user_id(conn, "olga"), True)
        first, second = quarantine.listing(conn)
    page = await (await hub_client.get("/ops")).text()
    assert 'href="/ops/quarantine"' in page
    page = await (await hub_client.get("/ops/quarantine")).text()
    assert "poison-6" in page and "poison-7" in page and any(r in page for r in REFUSALS)
    refused = await hub_client.post("/ops/quarantine/retry", data={"id": str(first.id)},
                                    allow_redirects=False)
    assert refused.status == 403  # no CSRF token
    reply = await post_form(hub_client, "/ops/quarantine/retry", {"id": str(first.id)},
                            token_from="/ops/quarantine")
    assert reply.status == 303
    reply = await post_form(hub_client, "/ops/quarantine/discard", {"id": str(second.id)},
                            token_from="/ops/quarantine")
    assert reply.status == 303
    again = await post_form(hub_client, "/ops/quarantine/discard", {"id": str(second.id)},
                            token_from="/ops/quarantine")
    assert again.status == 404
    bad = await post_form(hub_client, "/ops/quarantine/discard", {"id": "²"},
                          token_from="/ops/quarantine")
    assert bad.status == 400
    with engine.connect() as conn:
        assert quarantine.count(conn) == 0 and inbox.pending_count(conn) == 1
        assert [h.id for h in quarantine.listing(conn, "discarded")] == [second.id]
