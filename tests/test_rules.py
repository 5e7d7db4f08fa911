"""One or more tests per rule of the money spec (money.md): which flattrs count in a month
(rules 1-7), division, budget, settlement runs and accounts. Every test runs on every configured
database and ends with the ledger self-check holding."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from base.config import with_overrides
from ledger import accounts, identities
from ledger.errors import IdempotencyConflict, InsufficientFunds, LedgerError
from ledger.months import add_months, month_end, month_start
from ledger.schema import accounts as accounts_table
from ledger.schema import ledger_clock, settlement_runs, subscriptions, things, transfers
from ledger.settlement import settle
from ledger.sql import utcnow
from tests.ledger_checks import (
    all_balances,
    balances,
    dump,
    flattr_rows,
    problems,
    report,
    shares_of,
    statuses,
    system_balance,
)
from tests.ledger_helpers import feed, make_user, star

LATER = datetime(2027, 6, 1)  # every month these tests settle has ended by then
JUNE, JULY, AUGUST, SEPTEMBER = "2026-06", "2026-07", "2026-08", "2026-09"


def expected_shares(amount: int, count: int) -> list[int]:
    """The division rule, written out: `amount // n` each, the first `amount % n` one more."""
    return [amount // count + (1 if i < amount % count else 0) for i in range(count)]


def fee(share: int, config) -> int:
    return share * config.fee_bps // 10000


def net(share: int, config) -> int:
    return share - fee(share, config)


def run(engine, month, config):
    return settle(engine, month, config.money, now=LATER)


def claim(engine, uid, platform_user_id, platform="github"):
    with engine.begin() as conn:
        identities.link(conn, uid, platform, platform_user_id, claim=True)


def credit(engine, uid, amount, key):
    with engine.begin() as conn:
        accounts.credit_funds(conn, uid, amount, "test", key)


def ana_and_bo(engine, config, *, ana_budget=500, ana_funds=2000, bo_funds=300):
    """Ana gives (linked GitHub identity 1, not claimed); Bo receives (claimed identity 2) and
    is funded unless `bo_funds` says otherwise."""
    ana = make_user(engine, config, "ana", budget=ana_budget, funds=ana_funds, github="1",
                    claim=False)
    bo = make_user(engine, config, "bo", budget=200, funds=bo_funds, github="2")
    return ana, bo


def ok(engine):
    assert problems(engine) == []


# Rule 1: once per thing per month, at the earliest occurred_at

def test_repeated_flattrs_of_a_thing_count_once(engine, config):
    ana, bo = ana_and_bo(engine, config)
    result = feed(engine,
                  star("1", "r1", "2", "2026-06-03T10:00:00"),
                  star("1", "r2", "2", "2026-06-04T10:00:00"),
                  star("1", "r1", "2", "2026-06-09T10:00:00"))
    result2 = feed(engine, star("1", "r1", "2", "2026-06-12T10:00:00"))
    assert result.counts["already"] == 1 and result2.counts["already"] == 1
    assert len(flattr_rows(engine, "r1")) == 1

    run(engine, JUNE, config)
    got = shares_of(engine, JUNE)
    assert sorted(s["content_id"] for s in got) == ["r1", "r2"]
    assert [s["share"] for s in got] == expected_shares(500, 2)
    assert balances(engine, bo)["revenue"] == sum(net(s, config) for s in expected_shares(500, 2))
    assert balances(engine, ana)["funds"] == 2000 - 500
    ok(engine)


@pytest.mark.parametrize("batches", ["one batch", "separate batches"])
def test_earliest_occurred_at_is_kept_when_events_arrive_out_of_order(engine, config, batches):
    ana, _bo = ana_and_bo(engine, config, ana_budget=301)
    events = [star("1", "r1", "2", "2026-06-20T10:00:00"),
              star("1", "r2", "2", "2026-06-10T10:00:00"),
              star("1", "r1", "2", "2026-06-05T10:00:00"),
              star("1", "r1", "2", "2026-06-25T10:00:00")]
    if batches == "one batch":
        feed(engine, *events)
    else:
        for event in events:
            feed(engine, event)
    (r1,) = flattr_rows(engine, "r1")
    assert r1["occurred_at"] == datetime(2026, 6, 5, 10)

    run(engine, JUNE, config)
    # r1 (5 June) precedes r2 (10 June), so the odd cent of A = 301 goes to r1.
    by_thing = {s["content_id"]: s["share"] for s in shares_of(engine, JUNE)}
    assert by_thing == dict(zip(["r1", "r2"], expected_shares(301, 2), strict=True))
    assert by_thing["r1"] > by_thing["r2"]
    given = report(engine, ana, JUNE)["given"]
    assert [g["occurred_at"][:10] for g in given if g["content_id"] == "r1"] == ["2026-06-05"]
    ok(engine)


# Rule 2: retraction

@pytest.mark.parametrize("batches", ["one batch", "separate batches"])
def test_unlike_before_settlement_removes_the_flattr(engine, config, batches):
    ana, bo = ana_and_bo(engine, config)
    events = [star("1", "r1", "2", "2026-06-03T10:00:00"),
              star("1", "r2", "2", "2026-06-04T10:00:00"),
              star("1", "r1", "2", "2026-06-08T10:00:00", kind="unlike")]
    if batches == "one batch":
        feed(engine, *events)
    else:
        for event in events:
            feed(engine, event)
    run(engine, JUNE, config)
    assert [s["content_id"] for s in shares_of(engine, JUNE)] == ["r2"]
    assert balances(engine, bo)["revenue"] == net(500, config)
    assert balances(engine, ana)["funds"] == 1500
    # Within one batch the like never becomes a flattr; across batches it is kept, retracted.
    expected = {"r2": ["counted"]} if batches == "one batch" else {
        "r1": ["retracted"], "r2": ["counted"]}
    assert statuses(engine, ana, JUNE) == expected
    ok(engine)


def test_unlike_in_an_open_month_retracts_a_like_of_an_earlier_open_month(engine, config):
    _ana, bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"),
         star("1", "r2", "2", "2026-06-04T10:00:00"))
    feed(engine, star("1", "r1", "2", "2026-07-01T10:00:00", kind="unlike"))
    run(engine, JUNE, config)
    assert [s["content_id"] for s in shares_of(engine, JUNE)] == ["r2"]
    assert balances(engine, bo)["revenue"] == net(500, config)
    ok(engine)


def test_like_after_unlike_counts_again_at_its_own_time(engine, config):
    ana, _bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"))
    feed(engine, star("1", "r1", "2", "2026-06-04T10:00:00", kind="unlike"))
    feed(engine, star("1", "r1", "2", "2026-06-06T10:00:00"))
    run(engine, JUNE, config)
    (share,) = shares_of(engine, JUNE)
    assert (share["content_id"], share["share"]) == ("r1", 500)
    assert share["occurred_at"] == datetime(2026, 6, 6, 10)
    assert sorted(statuses(engine, ana, JUNE)["r1"]) == ["counted", "retracted"]
    ok(engine)


def test_unlike_dated_before_the_like_does_not_remove_it(engine, config):
    _ana, _bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r1", "2", "2026-06-10T10:00:00"))
    feed(engine, star("1", "r1", "2", "2026-06-05T10:00:00", kind="unlike"))
    run(engine, JUNE, config)
    assert [s["content_id"] for s in shares_of(engine, JUNE)] == ["r1"]
    ok(engine)


def test_unlike_that_arrives_before_its_like_still_retracts_it(engine, config):
    _ana, bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r2", "2", "2026-06-01T10:00:00"))
    feed(engine, star("1", "r1", "2", "2026-06-08T10:00:00", kind="unlike"))
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"))
    run(engine, JUNE, config)
    assert [s["content_id"] for s in shares_of(engine, JUNE)] == ["r2"]
    assert balances(engine, bo)["revenue"] == net(500, config)
    ok(engine)


def test_unlike_after_settlement_changes_nothing_of_the_settled_month(engine, config):
    ana, bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"),
         star("1", "r2", "2", "2026-06-04T10:00:00"))
    run(engine, JUNE, config)
    before = dump(engine)
    june_shares = shares_of(engine, JUNE)
    result = feed(engine, star("1", "r1", "2", "2026-06-08T10:00:00", kind="unlike"))
    assert result.counts["nothing_to_unlike"] == 1
    after = dump(engine)
    for table in ("shares", "transfers", "accounts", "flattrs", "pledges", "settlement_snapshot"):
        assert after[table] == before[table], table

    run(engine, JULY, config)  # and the next month does not claw anything back
    assert shares_of(engine, JUNE) == june_shares
    assert shares_of(engine, JULY) == []
    assert balances(engine, ana)["funds"] == 1500
    assert balances(engine, bo)["revenue"] == sum(net(s, config) for s in expected_shares(500, 2))
    assert statuses(engine, ana, JUNE) == {"r1": ["counted"], "r2": ["counted"]}
    ok(engine)


def test_unlike_before_a_pledge_is_counted_removes_the_pledge(engine, config):
    ana, _bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r3", "3", "2026-06-05T10:00:00"))
    run(engine, JUNE, config)
    assert statuses(engine, ana, JUNE) == {"r3": ["pledged"]}
    feed(engine, star("1", "r3", "3", "2026-07-01T10:00:00", kind="unlike"))
    cy = make_user(engine, config, "cy", budget=200, funds=200, github="3")
    run(engine, JULY, config)
    assert shares_of(engine, JULY) == []
    assert balances(engine, cy)["revenue"] == 0
    assert balances(engine, ana)["funds"] == 2000
    assert statuses(engine, ana, JUNE) == {"r3": ["retracted"]}
    ok(engine)


# Rule 3: no self-flattr

def test_flattr_of_a_thing_the_giver_claimed_is_ignored(engine, config):
    ana, bo = ana_and_bo(engine, config)
    result = feed(engine, star("2", "own", "2", "2026-06-03T10:00:00"),
                  star("2", "anas", "1", "2026-06-04T10:00:00"))
    assert result.counts["self"] == 1
    assert flattr_rows(engine, "own") == []
    claim(engine, ana, "1")
    run(engine, JUNE, config)
    # Bo's whole A (his budget 200) goes to Ana's thing alone: his own did not count in n.
    assert [(s["content_id"], s["share"]) for s in shares_of(engine, JUNE)] == [("anas", 200)]
    assert balances(engine, bo) == {"funds": 100, "revenue": 0}
    assert balances(engine, ana)["revenue"] == net(200, config)
    ok(engine)


def test_claiming_the_owner_identity_before_settlement_makes_it_a_self_flattr(engine, config):
    ana, bo = ana_and_bo(engine, config)
    feed(engine, star("1", "mine", "9", "2026-06-03T10:00:00"),
         star("1", "r1", "2", "2026-06-04T10:00:00"))
    claim(engine, ana, "9")
    run(engine, JUNE, config)
    assert [(s["content_id"], s["share"]) for s in shares_of(engine, JUNE)] == [("r1", 500)]
    assert balances(engine, ana) == {"funds": 1500, "revenue": 0}
    assert balances(engine, bo)["revenue"] == net(500, config)
    assert statuses(engine, ana, JUNE)["mine"] == ["self"]
    assert [r["pledge"] for r in flattr_rows(engine, "mine")] == [None]
    ok(engine)


def test_pledge_to_an_identity_the_giver_claims_later_never_pays_the_giver(engine, config):
    ana, _bo = ana_and_bo(engine, config)
    feed(engine, star("1", "mine", "9", "2026-06-03T10:00:00"))
    run(engine, JUNE, config)
    assert statuses(engine, ana, JUNE) == {"mine": ["pledged"]}
    claim(engine, ana, "9")
    run(engine, JULY, config)
    assert shares_of(engine) == []
    assert balances(engine, ana) == {"funds": 2000, "revenue": 0}
    ok(engine)


# Rule 4: late events

def test_late_flattr_counts_in_the_oldest_open_month_and_is_marked_late(engine, config):
    ana, bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"))
    run(engine, JUNE, config)
    june = shares_of(engine, JUNE)
    run(engine, JULY, config)
    result = feed(engine, star("1", "r2", "2", "2026-06-20T10:00:00"),
                  star("1", "r3", "2", "2026-07-20T10:00:00"),
                  star("1", "r4", "2", "2026-08-02T10:00:00"))
    assert result.counts["late"] == 2
    rows = {r["content_id"]: (r["month"], bool(r["late"])) for r in flattr_rows(engine)}
    oldest_open = add_months(JULY, 1)
    assert rows == {"r1": (JUNE, False), "r2": (oldest_open, True), "r3": (oldest_open, True),
                    "r4": (oldest_open, False)}

    run(engine, AUGUST, config)
    assert shares_of(engine, JUNE) == june
    august = shares_of(engine, AUGUST)
    assert [(s["content_id"], s["late"]) for s in august] == [
        ("r2", True), ("r3", True), ("r4", False)]
    assert [s["share"] for s in august] == expected_shares(500, 3)
    given = {g["content_id"]: g for g in report(engine, ana, AUGUST)["given"]}
    assert (given["r2"]["late"], given["r2"]["status"]) == (True, "counted")
    assert (given["r4"]["late"], given["r4"]["status"]) == (False, "counted")
    assert balances(engine, ana)["funds"] == 2000 - 2 * 500
    assert balances(engine, bo)["revenue"] == net(500, config) + sum(
        net(s, config) for s in expected_shares(500, 3))
    ok(engine)


def test_late_flattr_of_a_thing_already_flattred_in_the_open_month_counts_once(engine, config):
    _ana, _bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r0", "2", "2026-06-01T10:00:00"))
    run(engine, JUNE, config)
    feed(engine, star("1", "r1", "2", "2026-07-04T10:00:00"))
    feed(engine, star("1", "r1", "2", "2026-06-28T10:00:00"))  # late, and earlier
    (r1,) = flattr_rows(engine, "r1")
    assert (r1["month"], bool(r1["late"]), r1["occurred_at"]) == (
        JULY, True, datetime(2026, 6, 28, 10))
    run(engine, JULY, config)
    assert [(s["content_id"], s["share"]) for s in shares_of(engine, JULY)] == [("r1", 500)]
    ok(engine)


# Rule 5: receivable, and give to get

def test_identity_linked_but_not_claimed_is_not_receivable(engine, config):
    ana = make_user(engine, config, "ana", budget=500, funds=2000, github="1", claim=False)
    bo = make_user(engine, config, "bo", budget=200, funds=300, github="2", claim=False)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"))
    run(engine, JUNE, config)
    assert shares_of(engine) == []
    assert balances(engine, bo)["revenue"] == 0
    assert balances(engine, ana)["funds"] == 2000
    assert statuses(engine, ana, JUNE) == {"r1": ["pledged"]}
    ok(engine)


@pytest.mark.parametrize("give_to_get", [True, False])
@pytest.mark.parametrize("bo_budget", [200, None])
def test_give_to_get_decides_whether_an_unfunded_receiver_may_receive(engine, config,
                                                                      give_to_get, bo_budget):
    config = with_overrides(config, {"give_to_get": give_to_get})
    ana = make_user(engine, config, "ana", budget=500, funds=2000, github="1", claim=False)
    bo = make_user(engine, config, "bo", budget=bo_budget, funds=150, github="2")
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"),
         star("1", "r2", "2", "2026-06-04T10:00:00"))
    run(engine, JUNE, config)
    assert report(engine, bo, JUNE)["funded"] is False
    if give_to_get:
        assert shares_of(engine) == []
        assert balances(engine, ana)["funds"] == 2000
        assert balances(engine, bo)["revenue"] == 0
        assert statuses(engine, ana, JUNE) == {"r1": ["pledged"], "r2": ["pledged"]}
    else:
        assert [s["share"] for s in shares_of(engine, JUNE)] == expected_shares(500, 2)
        assert balances(engine, ana)["funds"] == 1500
        assert balances(engine, bo) == {
            "funds": 150, "revenue": sum(net(s, config) for s in expected_shares(500, 2))}
        assert statuses(engine, ana, JUNE) == {"r1": ["counted"], "r2": ["counted"]}
    ok(engine)


def test_receiver_funded_only_at_the_minimum_may_receive(engine, config):
    _ana, bo = ana_and_bo(engine, config, bo_funds=config.min_monthly)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"))
    run(engine, JUNE, config)
    assert balances(engine, bo)["revenue"] == net(500, config)
    ok(engine)


# Rule 6: pledges

def test_pledge_counts_once_in_a_later_month_keeping_its_occurred_at(engine, config):
    ana, _bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"),
         star("1", "r3", "3", "2026-06-05T10:00:00"))
    run(engine, JUNE, config)
    assert [s["content_id"] for s in shares_of(engine, JUNE)] == ["r1"]
    assert statuses(engine, ana, JUNE)["r3"] == ["pledged"]
    assert [p["content_id"] for p in report(engine, ana, JUNE)["pledges_waiting"]] == ["r3"]

    cy = make_user(engine, config, "cy", budget=200, funds=200, github="3")
    run(engine, JULY, config)
    (share,) = shares_of(engine, JULY)
    assert (share["content_id"], share["flattr_month"], share["share"]) == ("r3", JUNE, 500)
    assert share["occurred_at"] == datetime(2026, 6, 5, 10)
    assert balances(engine, cy)["revenue"] == net(500, config)
    july = report(engine, ana, JULY)
    assert [(g["content_id"], g["month"], g["status"]) for g in july["given"]] == [
        ("r3", JUNE, "counted")]
    assert july["pledges_waiting"] == []
    assert statuses(engine, ana, JUNE)["r3"] == [f"pledge_counted_{JULY}"]

    run(engine, AUGUST, config)  # counted once: nothing more in August
    assert shares_of(engine, AUGUST) == []
    assert balances(engine, cy)["revenue"] == net(500, config)
    assert balances(engine, ana)["funds"] == 2000 - 2 * 500
    ok(engine)


def test_pledge_and_a_new_flattr_of_the_same_thing_count_once(engine, config):
    ana, bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r3", "3", "2026-06-05T10:00:00"))
    run(engine, JUNE, config)
    cy = make_user(engine, config, "cy", budget=200, funds=200, github="3")
    feed(engine, star("1", "r3", "3", "2026-07-01T10:00:00"),
         star("1", "r5", "2", "2026-07-02T10:00:00"))
    run(engine, JULY, config)
    july = shares_of(engine, JULY)
    assert [(s["content_id"], s["flattr_month"]) for s in july] == [("r3", JUNE), ("r5", JULY)]
    assert [s["share"] for s in july] == expected_shares(500, 2)
    assert balances(engine, cy)["revenue"] == net(july[0]["share"], config)
    assert balances(engine, bo)["revenue"] == net(july[1]["share"], config)
    assert balances(engine, ana)["funds"] == 1500
    ok(engine)


@pytest.mark.parametrize("claimed_before", [AUGUST, SEPTEMBER])
def test_pledges_older_than_pledge_months_lapse(engine, config, claimed_before):
    config = with_overrides(config, {"pledge_months": 2})
    ana, _bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r3", "3", "2026-06-05T10:00:00"))
    month = JUNE
    while month != claimed_before:
        run(engine, month, config)
        month = add_months(month, 1)
    cy = make_user(engine, config, "cy", budget=200, funds=200, github="3")
    run(engine, claimed_before, config)
    # It may count in M2 when June is one of the pledge_months months before M2.
    counts = add_months(JUNE, config.pledge_months) >= claimed_before
    assert counts == (claimed_before == AUGUST)
    if counts:
        assert [s["content_id"] for s in shares_of(engine, claimed_before)] == ["r3"]
        assert balances(engine, cy)["revenue"] == net(500, config)
        assert statuses(engine, ana, JUNE)["r3"] == [f"pledge_counted_{claimed_before}"]
    else:
        assert shares_of(engine) == []
        assert balances(engine, cy)["revenue"] == 0
        assert balances(engine, ana)["funds"] == 2000
        assert statuses(engine, ana, JUNE)["r3"] == ["pledge_lapsed"]
    ok(engine)


def test_unfunded_givers_pledges_stay_pledges(engine, config):
    ana, _bo = ana_and_bo(engine, config, ana_funds=150)
    feed(engine, star("1", "r3", "3", "2026-06-05T10:00:00"))
    run(engine, JUNE, config)
    cy = make_user(engine, config, "cy", budget=200, funds=200, github="3")
    run(engine, JULY, config)
    assert report(engine, ana, JULY)["funded"] is False
    assert shares_of(engine) == []
    assert [p["content_id"] for p in report(engine, ana, JULY)["pledges_waiting"]] == ["r3"]
    assert balances(engine, cy)["revenue"] == 0

    credit(engine, ana, 1000, "top-up")
    run(engine, AUGUST, config)
    assert [s["content_id"] for s in shares_of(engine, AUGUST)] == ["r3"]
    amount = min(500, 1150)
    assert balances(engine, ana)["funds"] == 1150 - amount
    assert balances(engine, cy)["revenue"] == net(amount, config)
    ok(engine)


def test_pledge_waits_while_the_claimant_is_unfunded_under_give_to_get(engine, config):
    _ana, _bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r3", "3", "2026-06-05T10:00:00"))
    run(engine, JUNE, config)
    cy = make_user(engine, config, "cy", budget=200, funds=100, github="3")
    run(engine, JULY, config)
    assert shares_of(engine) == []
    credit(engine, cy, 100, "cy top-up")
    run(engine, AUGUST, config)
    assert [(s["content_id"], s["share"]) for s in shares_of(engine, AUGUST)] == [("r3", 500)]
    assert balances(engine, cy)["revenue"] == net(500, config)
    ok(engine)


# Rule 7: subscriptions

def make_thing(engine, content_id, owner, platform="github"):
    with engine.begin() as conn:
        owner_id = identities.identity_id(conn, platform, owner)
        return conn.execute(things.insert().values(
            platform=platform, content_id=content_id, owner_identity_id=owner_id,
            created_at=utcnow()).returning(things.c.id)).scalar_one()


def subscribe(engine, uid, thing_id, months, start_month):
    with engine.begin() as conn:
        conn.execute(subscriptions.insert().values(
            user_id=uid, thing_id=thing_id, months=months, start_month=start_month,
            created_at=utcnow()))


def test_subscription_flattrs_at_the_first_instant_of_each_of_its_months(engine, config):
    ana, bo = ana_and_bo(engine, config)
    subscribe(engine, ana, make_thing(engine, "album", "2"), 3, JUNE)
    months = [add_months(JUNE, i) for i in range(4)]
    for month in months:
        run(engine, month, config)
    for month in months[:3]:
        (share,) = shares_of(engine, month)
        assert (share["content_id"], share["source"], share["share"]) == (
            "album", "subscription", 500)
        assert share["occurred_at"] == month_start(month)
    assert shares_of(engine, months[3]) == []
    assert balances(engine, ana)["funds"] == 2000 - 3 * 500
    assert balances(engine, bo)["revenue"] == 3 * net(500, config)
    ok(engine)


def test_subscription_and_a_like_of_the_same_thing_count_once(engine, config):
    ana, _bo = ana_and_bo(engine, config, ana_budget=301)
    thing = make_thing(engine, "album", "2")
    feed(engine, star("1", "r2", "2", "2026-06-02T10:00:00"),
         star("1", "album", "2", "2026-06-01T08:00:00"))
    subscribe(engine, ana, thing, 3, JUNE)
    run(engine, JUNE, config)
    june = shares_of(engine, JUNE)
    assert [(s["content_id"], s["occurred_at"]) for s in june] == [
        ("album", month_start(JUNE)), ("r2", datetime(2026, 6, 2, 10))]
    assert [s["share"] for s in june] == expected_shares(301, 2)
    ok(engine)


def test_subscription_months_must_be_3_6_or_12(engine, config):
    ana, _bo = ana_and_bo(engine, config)
    thing = make_thing(engine, "album", "2")
    with pytest.raises(IntegrityError):
        subscribe(engine, ana, thing, 4, JUNE)
    ok(engine)


# Division

def test_extra_cents_go_to_the_earliest_by_occurred_at_then_flattr_id(engine, config):
    # A = 502 over 4: two extra cents, so the tie at 10 June is split by flattr id.
    _ana, _bo = ana_and_bo(engine, config, ana_budget=502)
    same_time = "2026-06-10T10:00:00"
    # Fed in this order, the flattr ids follow it; content ids and thing ids sort otherwise.
    feed(engine, star("1", "rc", "2", same_time), star("1", "ra", "2", same_time),
         star("1", "rb", "2", same_time), star("1", "rz", "2", "2026-06-09T10:00:00"))
    rows = flattr_rows(engine)
    run(engine, JUNE, config)
    order = sorted(rows, key=lambda r: (r["occurred_at"], r["id"]))
    assert [r["content_id"] for r in order] == ["rz", "rc", "ra", "rb"]
    by_flattr = {s["flattr_id"]: s["share"] for s in shares_of(engine, JUNE)}
    assert [by_flattr[r["id"]] for r in order] == expected_shares(502, 4) == [126, 126, 125, 125]
    assert sum(by_flattr.values()) == 502
    ok(engine)


@pytest.mark.parametrize("fee_bps", [1000, 333, 0])
def test_fee_is_the_floor_of_the_share_times_fee_bps(engine, config, fee_bps):
    config = with_overrides(config, {"fee_bps": fee_bps})
    _ana, bo = ana_and_bo(engine, config, ana_budget=527)
    feed(engine, *(star("1", f"r{i}", "2", f"2026-06-0{i + 1}T10:00:00") for i in range(3)))
    run(engine, JUNE, config)
    got = shares_of(engine, JUNE)
    assert [s["share"] for s in got] == expected_shares(527, 3)
    for s in got:
        assert s["fee"] == s["share"] * fee_bps // 10000
        assert s["net"] == s["share"] - s["fee"]
    if fee_bps:  # the fee really was rounded down here, not to nearest
        assert any(s["share"] * fee_bps % 10000 * 2 >= 10000 for s in got)
    assert sum(s["share"] for s in got) == 527
    assert system_balance(engine) == sum(s["fee"] for s in got)
    assert balances(engine, bo)["revenue"] == sum(s["net"] for s in got)
    ok(engine)


def test_shares_of_many_givers_each_sum_to_their_amount(engine, config):
    bo = make_user(engine, config, "bo", budget=200, funds=300, github="2")
    cy = make_user(engine, config, "cy", budget=200, funds=300, github="3")
    givers = {}
    for i, (budget, funds) in enumerate([(500, 2000), (200, 999), (777, 700), (1000, 5000),
                                         (201, 201), (300, 50)]):
        givers[i] = (make_user(engine, config, f"g{i}", budget=budget, funds=funds,
                               github=f"g{i}", claim=False), min(budget, funds))
        feed(engine, *(star(f"g{i}", f"t{j}", "2" if j % 2 else "3",
                            f"2026-06-{j + 1:02d}T0{i}:00:00") for j in range(i + 1)))
    run(engine, JUNE, config)
    got = shares_of(engine, JUNE)
    for i, (uid, amount) in givers.items():
        mine = [s["share"] for s in got if s["giver_id"] == uid]
        if amount >= config.min_monthly:
            assert sorted(mine, reverse=True) == expected_shares(amount, i + 1)
            assert balances(engine, uid)["funds"] == [2000, 999, 700, 5000, 201, 50][i] - amount
        else:
            assert mine == []
    assert balances(engine, bo)["revenue"] + balances(engine, cy)["revenue"] + system_balance(
        engine) == sum(s["share"] for s in got)
    ok(engine)


# Budget

@pytest.mark.parametrize(("budget", "funds"), [(500, 2000), (500, 300), (300, 300)])
def test_amount_is_the_lesser_of_budget_and_funds(engine, config, budget, funds):
    ana, _bo = ana_and_bo(engine, config, ana_budget=budget, ana_funds=funds)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"),
         star("1", "r2", "2", "2026-06-04T10:00:00"))
    run(engine, JUNE, config)
    amount = min(budget, funds)
    assert report(engine, ana, JUNE)["amount"] == amount
    assert sum(s["share"] for s in shares_of(engine, JUNE)) == amount
    assert balances(engine, ana)["funds"] == funds - amount
    ok(engine)


@pytest.mark.parametrize(("budget", "funds"), [(500, 199), (None, 2000)])
def test_giver_below_the_minimum_is_unfunded_and_nothing_carries_over(engine, config,
                                                                       budget, funds):
    ana, bo = ana_and_bo(engine, config, ana_budget=budget, ana_funds=funds)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"),
         star("1", "r3", "3", "2026-06-05T10:00:00"))
    before = all_balances(engine)
    run(engine, JUNE, config)
    after = all_balances(engine)
    assert {name: after[name] for name in before} == before
    assert all(after[name] == 0 for name in after.keys() - before.keys())
    june = report(engine, ana, JUNE)
    assert (june["funded"], june["amount"]) == (False, 0)
    assert statuses(engine, ana, JUNE) == {"r1": ["unfunded"], "r3": ["pledged"]}

    with engine.begin() as conn:
        accounts.set_budget(conn, ana, 500, config.money)
    credit(engine, ana, 2000, "top-up")
    run(engine, JULY, config)  # June's receivable flattr does not carry over
    assert shares_of(engine) == []
    assert balances(engine, bo)["revenue"] == 0
    assert balances(engine, ana)["funds"] == funds + 2000
    ok(engine)


def test_budget_must_lie_within_the_configured_bounds(engine, config):
    ana = make_user(engine, config, "ana", budget=300)
    low, high = config.min_monthly, config.max_monthly
    for bad in (low - 1, high + 1, 0, -5, True, 250.0, "300"):
        with pytest.raises(LedgerError), engine.begin() as conn:
            accounts.set_budget(conn, ana, bad, config.money)
    with engine.connect() as conn:
        assert conn.execute(select(accounts.users.c.budget)).scalar_one() == 300
    for good in (low, high):
        with engine.begin() as conn:
            accounts.set_budget(conn, ana, good, config.money)
            assert conn.execute(select(accounts.users.c.budget)).scalar_one() == good
    ok(engine)


def test_amount_comes_from_the_snapshot_taken_when_the_run_starts(engine, config):
    ana, bo = ana_and_bo(engine, config, ana_funds=300)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"))

    def top_up_after_start(point):
        if point == "started":
            credit(engine, ana, 5000, "mid-run top-up")

    settle(engine, JUNE, config.money, now=LATER, fault=top_up_after_start)
    assert balances(engine, ana)["funds"] == 300 + 5000 - 300
    assert balances(engine, bo)["revenue"] == net(300, config)
    ok(engine)


# Settlement runs

def test_settling_a_month_that_has_not_ended_is_refused(engine, config):
    _ana, _bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"))
    before = dump(engine)
    with pytest.raises(LedgerError, match="not ended"):
        settle(engine, JUNE, config.money, now=month_end(JUNE) - timedelta(microseconds=1))
    assert dump(engine) == before
    settle(engine, JUNE, config.money, now=month_end(JUNE))
    assert len(shares_of(engine, JUNE)) == 1
    ok(engine)


def test_months_settle_in_order(engine, config):
    _ana, _bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"),
         star("1", "r2", "2", "2026-07-03T10:00:00"))
    before = dump(engine)
    for month in (JULY, AUGUST):
        with pytest.raises(LedgerError, match="in order"):
            run(engine, month, config)
        assert dump(engine) == before
    run(engine, JUNE, config)
    after_june = dump(engine)
    with pytest.raises(LedgerError, match="before the last settled"):
        run(engine, "2026-05", config)
    with pytest.raises(LedgerError, match="in order"):
        run(engine, AUGUST, config)
    assert dump(engine) == after_june
    run(engine, JULY, config)
    assert [s["content_id"] for s in shares_of(engine)] == ["r1", "r2"]
    with engine.connect() as conn:
        assert conn.execute(select(ledger_clock.c.last_closed_month)).scalar() == JULY
    ok(engine)


def test_an_empty_month_before_the_first_flattr_may_be_settled_first(engine, config):
    _ana, bo = ana_and_bo(engine, config)
    feed(engine, star("1", "r1", "2", "2026-07-03T10:00:00"))
    run(engine, JUNE, config)
    assert shares_of(engine) == []
    run(engine, JULY, config)
    assert [s["content_id"] for s in shares_of(engine, JULY)] == ["r1"]
    assert balances(engine, bo)["revenue"] == net(500, config)
    ok(engine)


def test_settling_twice_changes_nothing(engine, config):
    ana, _bo = ana_and_bo(engine, config)
    make_user(engine, config, "cy", budget=300, funds=1000, github="3", claim=False)
    feed(engine, *(star(actor, f"r{i}", "2", f"2026-06-0{i}T10:00:00")
                   for i in range(1, 6) for actor in ("1", "3")))
    first = run(engine, JUNE, config)
    once = dump(engine)
    again = run(engine, JUNE, config)
    assert dump(engine) == once
    assert again.already_done and not first.already_done
    assert (again.givers, again.flattrs, again.amount, again.fees) == (
        first.givers, first.flattrs, first.amount, first.fees) == (
        2, 10, 800, sum(fee(s, config) for s in expected_shares(500, 5) + expected_shares(300, 5)))
    assert balances(engine, ana)["funds"] == 1500
    ok(engine)


def test_a_run_interrupted_between_chunks_finishes_like_a_clean_run(engine, config):
    givers = [make_user(engine, config, f"g{i}", budget=200 + i, funds=1000, github=f"g{i}",
                        claim=False) for i in range(7)]
    bo = make_user(engine, config, "bo", budget=200, funds=300, github="2")
    feed(engine, *(star(f"g{i}", f"r{j}", "2", f"2026-06-0{j + 1}T1{i}:00:00")
                   for i in range(7) for j in range(3)))
    crashed = []

    def crash_once(point):
        if point == "chunk_committed" and not crashed:
            crashed.append(point)
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        settle(engine, JUNE, config.money, now=LATER, fault=crash_once)
    with engine.connect() as conn:
        assert conn.execute(select(settlement_runs.c.state)).scalar_one() == "running"
    assert any("unfinished" in p for p in problems(engine))
    summary = run(engine, JUNE, config)
    assert not summary.already_done
    amounts = [200 + i for i in range(7)]
    assert summary.amount == sum(amounts)
    assert [balances(engine, g)["funds"] for g in givers] == [1000 - a for a in amounts]
    expected_net = sum(net(s, config) for a in amounts for s in expected_shares(a, 3))
    assert balances(engine, bo)["revenue"] == expected_net
    assert len(shares_of(engine, JUNE)) == 21
    ok(engine)


# Accounts

def test_transfer_is_idempotent_per_key(engine, config):
    ana = make_user(engine, config, "ana", funds=1000)
    with engine.begin() as conn:
        funds = accounts.user_account(conn, ana, "funds")
        fees = accounts.system_account(conn, "fees")
        assert accounts.transfer(conn, funds, fees, 100, "test", "k1") is True
    with engine.begin() as conn:
        assert accounts.transfer(conn, funds, fees, 100, "test", "k1") is False
    assert balances(engine, ana)["funds"] == 900
    assert system_balance(engine) == 100
    with engine.connect() as conn:
        assert conn.execute(select(transfers.c.amount).where(
            transfers.c.idempotency_key == "k1")).scalars().all() == [100]
    ok(engine)


@pytest.mark.parametrize("change", ["amount", "credit", "debit"])
def test_reusing_a_key_for_another_transfer_is_a_conflict(engine, config, change):
    ana = make_user(engine, config, "ana", funds=1000)
    with engine.begin() as conn:
        funds = accounts.user_account(conn, ana, "funds")
        revenue = accounts.user_account(conn, ana, "revenue")
        fees = accounts.system_account(conn, "fees")
        accounts.transfer(conn, funds, fees, 100, "test", "k1")
    before = dump(engine)
    other = {"amount": (funds, fees, 101), "credit": (funds, revenue, 100),
             "debit": (revenue, fees, 100)}[change]
    with pytest.raises(IdempotencyConflict), engine.begin() as conn:
        if change == "debit":  # give revenue something, so only the key can refuse it
            accounts.transfer(conn, funds, revenue, 100, "test", "k0")
        accounts.transfer(conn, *other, "test", "k1")
    assert dump(engine) == before
    ok(engine)


@pytest.mark.parametrize("kind", ["funds", "revenue"])
def test_user_balance_never_goes_negative(engine, config, kind):
    ana = make_user(engine, config, "ana", funds=100)
    with engine.begin() as conn:
        funds = accounts.user_account(conn, ana, "funds")
        account = accounts.user_account(conn, ana, kind)
        fees = accounts.system_account(conn, "fees")
        if kind == "revenue":
            accounts.transfer(conn, funds, account, 100, "test", "to-revenue")
    before = dump(engine)
    with pytest.raises(InsufficientFunds), engine.begin() as conn:
        accounts.transfer(conn, account, fees, 101, "test", "too-much")
    assert dump(engine) == before
    with engine.begin() as conn:  # exactly the balance is fine
        assert accounts.transfer(conn, account, fees, 100, "test", "all")
    assert balances(engine, ana)[kind] == 0
    ok(engine)


def test_database_refuses_a_negative_user_balance_even_bypassing_the_api(engine, config):
    ana = make_user(engine, config, "ana", funds=100)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(update(accounts_table).where(accounts_table.c.user_id == ana)
                     .values(balance=-1))
    assert balances(engine, ana) == {"funds": 100, "revenue": 0}
    ok(engine)


@pytest.mark.parametrize("amount", [0, -1, True, 1.5])
def test_transfer_amount_must_be_a_positive_whole_number(engine, config, amount):
    ana = make_user(engine, config, "ana", funds=100)
    with pytest.raises(LedgerError), engine.begin() as conn:
        accounts.transfer(conn, accounts.user_account(conn, ana, "funds"),
                          accounts.system_account(conn, "fees"), amount, "test", "bad")
    assert balances(engine, ana)["funds"] == 100
    ok(engine)


def test_all_balances_sum_to_zero(engine, config):
    ana, bo = ana_and_bo(engine, config)
    with engine.begin() as conn:
        accounts.credit_funds(conn, bo, 700, "card", "evt_1", provider="stripe")
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"))
    run(engine, JUNE, config)
    held = all_balances(engine)
    assert sum(held.values()) == 0
    assert held["incoming:stripe"] == -700
    assert held["incoming:manual"] == -(2000 + 300)
    assert all(v >= 0 for name, v in held.items() if name.startswith("user:"))
    assert balances(engine, ana)["funds"] + balances(engine, bo)["revenue"] + system_balance(
        engine) == 2000
    ok(engine)
