"""Money bounds (issue 11, finding 3): a signed Stripe payment above `payments.max_funding` is
held as unmatched, never credited; an amount beyond 64 bits is refused; operators' credits and
members' payouts have configured maxima; no transfer takes a balance past 64 bits; and
`ledger verify` reports an impossible balance instead of crashing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from flattr_hub.cli import main
from ledger import accounts
from ledger.errors import LedgerError
from ledger.payments import unmatched_payments
from ledger.payouts import request_payout, set_payout_details
from ledger.verify import verify
from tests.hostile_helpers import Hostile, sign_stripe

pytest_plugins = ["tests.hub_fixtures", "tests.hostile_fixtures"]


def checkout(event_id: str, amount: object) -> bytes:
    return json.dumps({"id": event_id, "type": "checkout.session.completed", "data": {
        "object": {"object": "checkout.session", "id": f"cs_{event_id}",
                   "payment_status": "paid", "amount_total": amount, "currency": "eur",
                   "metadata": {"user": "olga"}}}}).encode()


async def test_a_payment_above_the_maximum_is_held_never_credited(hostile: Hostile, engine,
                                                                   hub_config):
    with engine.connect() as conn:
        before = accounts.balances(conn, accounts.user_id(conn, "olga"))
    for n, amount in enumerate((2**63 - 1, 2**63 - 1, hub_config.payments.max_funding + 1)):
        body = checkout(f"evt_{n}", amount)
        reply = await hostile.client.post("/webhooks/stripe", data=body,
                                          headers=sign_stripe(body))
        assert reply.status == 200
        assert (await reply.json())["result"] == "unmatched"
    for amount in (10**20, 2**63, -1):
        body = checkout(f"evt_{amount}", amount)
        reply = await hostile.client.post("/webhooks/stripe", data=body,
                                          headers=sign_stripe(body))
        assert reply.status == 400
    body = checkout("evt_ok", 500)
    reply = await hostile.client.post("/webhooks/stripe", data=body, headers=sign_stripe(body))
    assert (await reply.json())["result"] == "credited"
    with engine.connect() as conn:
        after = accounts.balances(conn, accounts.user_id(conn, "olga"))
        held = unmatched_payments(conn)
        assert verify(conn) == []
    assert after == {**before, "funds": before["funds"] + 500}
    assert len(held) == 3 and all("above the maximum" in p.problem for p in held)


def test_no_transfer_takes_a_balance_beyond_64_bits(engine, config):
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "ana")
        with pytest.raises(LedgerError):
            accounts.credit_funds(conn, uid, 10**15 + 1, "too much", "k1")
        for n in range(9):
            accounts.credit_funds(conn, uid, 10**15, "a lot", f"k-{n}")
        assert verify(conn) == []


def test_verify_reports_impossible_balances_and_never_crashes(engine):
    """What an unbounded credit did before: two transfers of 2^63 - 1 into one account, whose
    balance SQLite then kept as a float."""
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "ana")
        funds = accounts.user_account(conn, uid, "funds")
        source = accounts.system_account(conn, "incoming:stripe")
        for n in range(2):
            conn.execute(text(
                "INSERT INTO transfers (debit_id, credit_id, amount, reason, idempotency_key, "
                "created_at) VALUES (:d, :c, :a, 'huge', :k, CURRENT_TIMESTAMP)"),
                {"d": source, "c": funds, "a": 2**63 - 1, "k": f"huge-{n}"})
        if conn.dialect.name == "sqlite":  # PostgreSQL refuses the float; the sums differ there
            conn.execute(text("UPDATE accounts SET balance = 9.22337203685479e+18 "
                              "WHERE id = :i"), {"i": funds})
    with engine.connect() as conn:
        problems = verify(conn)
    assert problems, "an impossible ledger must be reported"
    assert any(f"user:{uid}:funds" in p for p in problems)


def test_cli_credit_and_payouts_have_maxima(engine, hub_config, db_url, capsys, monkeypatch):
    monkeypatch.setenv("FLATTR_DATABASE_URL", db_url)
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "ana")
        accounts.credit_funds(conn, uid, 5000, "test", "test:ana")
    too_much = str(hub_config.payments.max_credit + 1)
    assert main(["funds", "credit", "ana", too_much, "--reason", "gift"]) == 2
    assert "max_credit" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["funds", "credit", "ana", "9" * 5000, "--reason", "gift"])
    with engine.begin() as conn:
        set_payout_details(conn, uid, "Ana", "DE89370400440532013000", "")
        with pytest.raises(LedgerError, match="at most"):
            request_payout(conn, uid, hub_config.payments.max_payout + 1, "n" * 32,
                           hub_config.money)
        assert accounts.balances(conn, uid)["funds"] == 5000
        assert verify(conn) == []
