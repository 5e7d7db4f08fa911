"""Pledges from the creator's side (ledger.pledges), a member's months (ledger.history), the
dashboard's overview (ledger.overview) and the public profile (ledger.public_profiles)."""

from __future__ import annotations

import pytest

from base.config import with_overrides
from ledger.errors import NotFound
from ledger.history import monthly_totals
from ledger.months import add_months, month_end
from ledger.overview import overview
from ledger.pledges import waiting_for_identity, waiting_for_member
from ledger.public_profiles import public_profile
from ledger.settlement import settle
from ledger.verify import verify
from tests.creator_scenario import build, join_as_owner_of_github_3


def test_an_unclaimed_identity_shows_its_pledges_and_open_flattrs(engine, config):
    s = build(engine, config)
    with engine.connect() as conn:
        waiting = waiting_for_identity(conn, "github", "3", config.money)
        with pytest.raises(NotFound):
            waiting_for_identity(conn, "github", "999", config.money)
    # The M1 pledge r3 and this month's r7, from one supporter. Claimed now, this month's
    # settlement would count r3, r6 (bo's) and r7 for ana: 500 = 167 + 167 + 166.
    assert (waiting.supporters, waiting.flattrs, waiting.claimed_by) == (1, 2, None)
    assert waiting.estimate == (167 - 16) + (166 - 16)
    assert waiting.oldest_month == s.m1
    assert waiting.counts_in == s.now
    assert waiting.lapses_in == add_months(s.m1, config.pledge_months + 1)


def test_a_creator_sees_the_pledges_waiting_for_what_they_claimed(engine, config):
    s = build(engine, config)
    cy = join_as_owner_of_github_3(engine, config)
    with engine.connect() as conn:
        mine = waiting_for_member(conn, cy, config.money)
        assert waiting_for_member(conn, s.bo, config.money).identities == []
    assert mine.receiver_funded
    [github] = mine.identities
    # Only the pledge r3 waits: r7 is now an ordinary flattr of this month to cy.
    assert (github.platform_user_id, github.claimed_by, github.supporters, github.flattrs) == (
        "3", "cy", 1, 1)
    assert github.estimate == mine.estimate == 167 - 16
    assert mine.supporters == 1
    assert github.lapses_in == add_months(s.m1, config.pledge_months + 1)

    # The estimate holds: settling this month pays cy 151 for r3 and 150 for r7.
    settle(engine, s.now, config.money, now=month_end(s.now))
    with engine.connect() as conn:
        assert waiting_for_member(conn, cy, config.money).identities == []
        assert monthly_totals(conn, cy)[-1].received == 151 + 150
        assert verify(conn) == []


def test_supporters_of_several_identities_are_counted_once(engine, config):
    s = build(engine, config)
    cy = join_as_owner_of_github_3(engine, config, also="4")
    with engine.connect() as conn:
        mine = waiting_for_member(conn, cy, config.money)
    assert [(w.platform_user_id, w.supporters, w.flattrs, w.oldest_month)
            for w in mine.identities] == [("3", 1, 1, s.m1), ("4", 1, 1, s.m2)]
    assert mine.supporters == 1
    # r3, r9, r6 and r7 would count for ana this month: 125 each, 113 net.
    assert [w.estimate for w in mine.identities] == [113, 113]
    assert mine.estimate == 226


def test_an_unfunded_creator_is_told_the_pledges_would_not_count(engine, config):
    build(engine, config)
    cy = join_as_owner_of_github_3(engine, config, funds=0)
    with engine.connect() as conn:
        mine = waiting_for_member(conn, cy, config.money)
    assert not mine.receiver_funded
    assert [(w.flattrs, w.estimate) for w in mine.identities] == [(1, 0)]
    config = with_overrides(config, {"give_to_get": False})
    with engine.connect() as conn:
        assert waiting_for_member(conn, cy, config.money).estimate == 151


def test_pledges_about_to_lapse_are_worth_nothing(engine, config):
    s = build(engine, config)
    config = with_overrides(config, {"pledge_months": 1})  # r3 of M1 lapses when this month settles
    with engine.connect() as conn:
        waiting = waiting_for_identity(conn, "github", "3", config.money)
    assert waiting.lapses_in == s.now
    # Only r7 would count: with r6, 250 each.
    assert waiting.estimate == 250 - 25


def test_history_and_overview_add_up_to_the_statements(engine, config):
    s = build(engine, config)
    with engine.connect() as conn:
        history = monthly_totals(conn, s.ana)
        view = overview(conn, s.ana, config.money)
        bo = monthly_totals(conn, s.bo)
    assert [(m.month, m.settled, m.flattrs, m.given, m.fees, m.received) for m in history] == [
        (s.m1, True, 4, 500, 48, 0), (s.m2, True, 2, 500, 50, 0), (s.now, False, 3, 0, 0, 0)]
    assert [(m.month, m.received) for m in bo] == [(s.m1, 452), (s.m2, 450)]
    assert view.month == s.now
    assert [m.month for m in view.history] == [s.m1, s.m2]
    assert view.counts == {"counts": 1, "pledges": 1, "retracted": 1}
    assert view.estimate == 500
    assert view.balances == {"funds": 1000, "revenue": 0}


def test_public_profile(engine, config):
    s = build(engine, config)
    with engine.connect() as conn:
        bo = public_profile(conn, "bo")
        ana = public_profile(conn, "ana")
        with pytest.raises(NotFound):
            public_profile(conn, "nobody")
    assert [(i.platform, i.platform_user_id) for i in bo.identities] == [("github", "2")]
    assert bo.supporters == 1
    assert [(t.content_id, t.flattrs) for t in bo.things][:1] == [("r1", 1)]
    assert {t.content_id for t in bo.things} == {"r1", "r2", "r4", "r5", "r6", "r8"}
    assert [t.flattrs for t in bo.things if t.content_id == "r8"] == [0]
    assert (ana.identities, ana.things, ana.supporters) == ([], [], 0)
    assert s.bo
