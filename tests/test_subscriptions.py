"""Subscriptions as the API manages them (ledger.subscriptions): settlement makes their
monthly flattrs, a paused subscription makes none, deleting one stops it, and the term is
counted in calendar months from the oldest open month."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from ledger import subscriptions as subs
from ledger.errors import LedgerError, NotFound
from ledger.schema import flattrs, things
from ledger.settlement import settle
from ledger.verify import verify
from tests.test_rules import ana_and_bo, make_thing

JUNE_10, JULY_10, AUG_10 = datetime(2026, 6, 10), datetime(2026, 7, 10), datetime(2026, 8, 10)
LATER = datetime(2027, 1, 1)


def months_flattred(engine, thing_id):
    with engine.connect() as conn:
        return conn.execute(select(flattrs.c.month).where(
            flattrs.c.thing_id == thing_id, flattrs.c.source == "subscription")
            .order_by(flattrs.c.month)).scalars().all()


def test_paused_months_make_no_flattr_and_the_term_does_not_grow(engine, config):
    ana, _bo = ana_and_bo(engine, config)
    album = make_thing(engine, "album", "2")
    with engine.begin() as conn:
        made = subs.subscribe(conn, ana, album, 3, now=JUNE_10)
    assert (made.start_month, made.months_left, made.active) == ("2026-06", 3, True)
    settle(engine, "2026-06", config.money, now=LATER)
    with engine.begin() as conn:
        paused = subs.toggle(conn, ana, album, now=JULY_10)
    assert (paused.active, paused.months_left) == (False, 2)
    settle(engine, "2026-07", config.money, now=LATER)
    with engine.begin() as conn:
        assert subs.toggle(conn, ana, album, now=AUG_10).active is True
        assert [s.months_left for s in subs.subscriptions_of(conn, ana, AUG_10)] == [1]
    settle(engine, "2026-08", config.money, now=LATER)
    settle(engine, "2026-09", config.money, now=LATER)
    assert months_flattred(engine, album) == ["2026-06", "2026-08"]
    with engine.connect() as conn:
        assert subs.subscriptions_of(conn, ana, datetime(2026, 9, 2)) == []
        assert verify(conn) == []


def test_deleting_stops_it_and_keeps_what_it_made(engine, config):
    ana, _bo = ana_and_bo(engine, config)
    album = make_thing(engine, "album", "2")
    with engine.begin() as conn:
        subs.subscribe(conn, ana, album, 6, now=JUNE_10)
    settle(engine, "2026-06", config.money, now=LATER)
    with engine.begin() as conn:
        subs.unsubscribe(conn, ana, album, now=JULY_10)
        with pytest.raises(NotFound):
            subs.unsubscribe(conn, ana, album, now=JULY_10)
        again = subs.subscribe(conn, ana, album, 3, now=JULY_10)
    assert again.start_month == "2026-07"
    settle(engine, "2026-07", config.money, now=LATER)
    assert months_flattred(engine, album) == ["2026-06", "2026-07"]
    with engine.connect() as conn:
        assert verify(conn) == []


def test_refusals(engine, config):
    ana, bo = ana_and_bo(engine, config)
    album = make_thing(engine, "album", "2")
    with engine.begin() as conn:
        with pytest.raises(LedgerError):
            subs.subscribe(conn, ana, album, 4, now=JUNE_10)
        with pytest.raises(NotFound):
            subs.subscribe(conn, ana, 999, 3, now=JUNE_10)
        with pytest.raises(subs.SubscriptionRefused) as owner:
            subs.subscribe(conn, bo, album, 3, now=JUNE_10)
        assert owner.value.code == "thing_owner"
        subs.subscribe(conn, ana, album, 3, now=JUNE_10)
        with pytest.raises(subs.SubscriptionRefused) as twice:
            subs.subscribe(conn, ana, album, 3, now=JULY_10)
        assert twice.value.code == "subscribed"
        with pytest.raises(NotFound):
            subs.toggle(conn, bo, album, now=JUNE_10)
        assert conn.execute(select(things.c.id)).scalars().all() == [album]


def test_a_subscription_made_after_a_month_closed_starts_in_the_next(engine, config):
    ana, _bo = ana_and_bo(engine, config)
    album = make_thing(engine, "album", "2")
    settle(engine, "2026-06", config.money, now=LATER)
    with engine.begin() as conn:
        made = subs.subscribe(conn, ana, album, 3, now=datetime(2026, 6, 30, 23))
    assert made.start_month == "2026-07"
