"""The worked example of the money rules (spec money.md), end to end through ingestion,
settlement, balances and statements, on every configured database."""

from datetime import datetime

from ledger import accounts, identities
from ledger.settlement import settle
from ledger.statement import statement
from ledger.verify import verify
from tests.ledger_helpers import feed, make_user, star

AFTER = datetime(2026, 8, 2)


def balances(engine, uid):
    with engine.connect() as conn:
        return accounts.balances(conn, uid)


def fees(engine):
    with engine.begin() as conn:
        fees_id = accounts.system_account(conn, "fees")
        from sqlalchemy import select

        from ledger.schema import accounts as table
        return conn.execute(select(table.c.balance).where(table.c.id == fees_id)).scalar_one()


def test_worked_example(engine, config):
    ana = make_user(engine, config, "ana", budget=500, funds=2000, github="1", claim=False)
    bo = make_user(engine, config, "bo", budget=200, funds=300, github="2")
    result = feed(
        engine,
        star("1", "r1", "2", "2026-06-03T10:00:00"),
        star("1", "r2", "2", "2026-06-04T10:00:00"),
        star("1", "r3", "3", "2026-06-05T10:00:00"),
        star("1", "r4", "2", "2026-06-06T10:00:00"),
        star("1", "r1", "2", "2026-06-09T10:00:00"),
    )
    assert result.counts["flattred"] == 3
    assert result.counts["pledge"] == 1
    assert result.counts["already"] == 1

    june = settle(engine, "2026-06", config.money, now=AFTER)
    assert (june.flattrs, june.amount, june.fees) == (3, 500, 48)
    with engine.connect() as conn:
        report = statement(conn, ana, "2026-06", config.money)
    counted = [g for g in report["given"] if g["status"] == "counted"]
    assert [(g["content_id"], g["share"], g["fee"], g["net"]) for g in counted] == [
        ("r1", 167, 16, 151), ("r2", 167, 16, 151), ("r4", 166, 16, 150)]
    assert [g["status"] for g in report["given"] if g["content_id"] == "r3"] == ["pledged"]
    assert balances(engine, bo) == {"funds": 300, "revenue": 452}
    assert balances(engine, ana) == {"funds": 1500, "revenue": 0}
    assert fees(engine) == 48

    cy = make_user(engine, config, "cy", budget=200, funds=200)
    with engine.begin() as conn:
        identities.link(conn, cy, "github", "3", claim=True)
    feed(engine, star("1", "r5", "2", "2026-07-02T10:00:00"))
    july = settle(engine, "2026-07", config.money, now=AFTER)
    assert (july.flattrs, july.amount, july.fees) == (2, 500, 50)
    with engine.connect() as conn:
        report = statement(conn, ana, "2026-07", config.money)
    assert sorted((g["content_id"], g["month"], g["share"], g["net"]) for g in report["given"]
                  if g["status"] == "counted") == [("r3", "2026-06", 250, 225),
                                                   ("r5", "2026-07", 250, 225)]
    assert balances(engine, ana)["funds"] == 1000
    assert balances(engine, bo)["revenue"] == 677
    assert balances(engine, cy)["revenue"] == 225
    assert fees(engine) == 98
    total = sum(sum(balances(engine, u).values()) for u in (ana, bo, cy)) + fees(engine)
    assert total == 2500
    with engine.connect() as conn:
        assert verify(conn) == []


def test_unfunded_receiver_turns_flattrs_into_pledges(engine, config):
    ana = make_user(engine, config, "ana", budget=500, funds=2000, github="1", claim=False)
    make_user(engine, config, "bo", budget=200, funds=150, github="2")
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"),
         star("1", "r2", "2", "2026-06-04T10:00:00"))
    run = settle(engine, "2026-06", config.money, now=AFTER)
    assert (run.flattrs, run.amount) == (0, 0)
    assert balances(engine, ana)["funds"] == 2000
    with engine.connect() as conn:
        report = statement(conn, ana, "2026-06", config.money)
        assert {g["status"] for g in report["given"]} == {"pledged"}
        assert verify(conn) == []


def test_open_month_statement_estimates_shares_with_todays_budget(engine, config):
    ana = make_user(engine, config, "ana", budget=500, funds=2000, github="1", claim=False)
    make_user(engine, config, "bo", budget=200, funds=300, github="2")
    feed(engine, star("1", "r1", "2", "2026-06-03T10:00:00"),
         star("1", "r2", "2", "2026-06-04T10:00:00"),
         star("1", "r3", "3", "2026-06-05T10:00:00"))
    with engine.connect() as conn:
        report = statement(conn, ana, "2026-06", config.money)
    assert not report["settled"]
    assert [(g["content_id"], g["status"], g["estimate"]) for g in report["given"]] == [
        ("r1", "pending", 250), ("r2", "pending", 250), ("r3", "pending_pledge", 0)]
    settle(engine, "2026-06", config.money, now=AFTER)
    with engine.connect() as conn:
        settled = statement(conn, ana, "2026-06", config.money)
    assert [g["share"] for g in settled["given"] if g["status"] == "counted"] == [250, 250]
