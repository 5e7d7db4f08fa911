"""Money out: payout details (IBAN mod-97), payout requests from revenue, SEPA credit transfer
batches (pain.001.001.03), marking payouts paid or failed, moving revenue to funds, the
budget form, the operator's page and the `flattr-hub payouts` / `payments` commands. The ledger
self-check holds after each step."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from sqlalchemy import select

from base.config import with_overrides
from flattr_hub.cli import main
from ledger import accounts
from ledger.errors import LedgerError
from ledger.money_schema import payouts as payouts_table
from ledger.payments import ProviderPayment, record_payment
from ledger.payouts import (
    batch_file,
    export_batch,
    mark_failed,
    mark_paid,
    move_revenue_to_funds,
    request_payout,
    set_payout_details,
)
from ledger.sepa import normalise_bic, normalise_iban
from members.logins import set_operator
from tests.ledger_checks import all_balances, balances, dump, problems
from tests.web_helpers import post_form, sign_up

pytest_plugins = ["tests.hub_fixtures", "tests.money_fixtures"]

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
IBANS = {"ana": "DE89370400440532013000", "bo": "GB82WEST12345698765432",
         "cy": "FR1420041010050500013M02606"}
NONCE = re.compile(r'name="nonce" value="([^"]+)"')
TODAY = date(2026, 11, 25)


def nonce(n: int) -> str:
    return f"test-nonce-{n:08d}"


def user_with_revenue(engine, config, name: str, revenue: int, *, details: bool = True) -> int:
    with engine.begin() as conn:
        uid = accounts.create_user(conn, name)
        source = accounts.system_account(conn, "incoming:test")
        accounts.transfer(conn, source, accounts.user_account(conn, uid, "revenue"), revenue,
                          "test revenue", f"test:{name}:revenue")
        if details:
            set_payout_details(conn, uid, f"{name.title()} Example", IBANS[name],
                               "COBADEFFXXX" if name == "ana" else "")
    return uid


def run(engine, fn, *args):
    with engine.begin() as conn:
        return fn(conn, *args)


@pytest.fixture
def sepa_config(config, debtor):
    return with_overrides(config, {"payments.sepa": debtor})


def test_iban_and_bic_are_checked():
    assert normalise_iban("de89 3704 0044 0532 0130 00") == "DE89370400440532013000"
    assert normalise_iban("FR14 2004 1010 0505 0001 3M02 606") == IBANS["cy"]
    for bad in ("DE88370400440532013000", "DE89 3704", "1234567890123456", "",
                "DE89370400440532013000!"):
        with pytest.raises(LedgerError):
            normalise_iban(bad)
    assert normalise_bic(" cobadeff ") == "COBADEFF" and normalise_bic("") is None
    with pytest.raises(LedgerError):
        normalise_bic("COBA")


def test_payout_requests_are_checked_and_move_revenue_once(engine, sepa_config):
    ana = user_with_revenue(engine, sepa_config, "ana", 2500)
    bo = user_with_revenue(engine, sepa_config, "bo", 5000, details=False)
    before = dump(engine)
    for uid, amount, message in ((ana, 999, "at least 1000"), (ana, 2600, "less than 2600"),
                                 (bo, 1000, "payout details"), (ana, 0, "positive")):
        with pytest.raises(LedgerError, match=message):
            run(engine, request_payout, uid, amount, nonce(1), sepa_config.money)
    with pytest.raises(LedgerError, match="expired"):
        run(engine, request_payout, ana, 1000, "short", sepa_config.money)
    assert dump(engine) == before

    first = run(engine, request_payout, ana, 1500, nonce(1), sepa_config.money)
    assert run(engine, request_payout, ana, 1500, nonce(1), sepa_config.money) == first
    with pytest.raises(LedgerError, match="already sent"):
        run(engine, request_payout, ana, 1000, nonce(1), sepa_config.money)
    assert balances(engine, ana) == {"funds": 0, "revenue": 1000}
    assert all_balances(engine)["pending_payouts:sepa"] == 1500
    assert problems(engine) == []


def test_a_sepa_batch_pays_every_requested_payout(engine, sepa_config):
    ids = [run(engine, request_payout, user_with_revenue(engine, sepa_config, name, amount),
               amount, nonce(i), sepa_config.money)
           for i, (name, amount) in enumerate((("ana", 1000), ("bo", 2345), ("cy", 10001)))]
    batch = run(engine, export_batch, sepa_config.money, sepa_config.debtor, TODAY)
    assert (batch.payouts, batch.total) == (3, 13346)
    with engine.connect() as conn:
        xml = batch_file(conn, batch.id)
        states = conn.execute(select(payouts_table.c.state, payouts_table.c.batch_id)).all()
    assert {tuple(row) for row in states} == {("exported", batch.id)}
    root = ET.fromstring(xml)
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "3"
    assert header.findtext("p:CtrlSum", namespaces=NS) == "133.46"
    assert header.findtext("p:MsgId", namespaces=NS) == batch.message_id
    info = root.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    debtor = sepa_config.payments.sepa
    assert info.findtext("p:Dbtr/p:Nm", namespaces=NS) == debtor.name
    assert info.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == debtor.iban
    assert info.findtext("p:ReqdExctnDt", namespaces=NS) == "2026-11-25"
    txs = info.findall("p:CdtTrfTxInf", NS)
    assert [(tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS),
             tx.findtext("p:Amt/p:InstdAmt", namespaces=NS),
             tx.find("p:Amt/p:InstdAmt", NS).get("Ccy"),
             tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS),
             tx.findtext("p:CdtrAgt/p:FinInstnId/p:BIC", namespaces=NS),
             tx.findtext("p:Cdtr/p:Nm", namespaces=NS)) for tx in txs] == [
        (f"FLATTR-PAYOUT-{ids[0]}", "10.00", "EUR", IBANS["ana"], "COBADEFFXXX", "Ana Example"),
        (f"FLATTR-PAYOUT-{ids[1]}", "23.45", "EUR", IBANS["bo"], None, "Bo Example"),
        (f"FLATTR-PAYOUT-{ids[2]}", "100.01", "EUR", IBANS["cy"], None, "Cy Example")]
    with pytest.raises(LedgerError, match="no payouts are waiting"):
        run(engine, export_batch, sepa_config.money, sepa_config.debtor, TODAY)
    assert problems(engine) == []


def test_export_needs_the_operator_account(engine, config):
    ana = user_with_revenue(engine, config, "ana", 1000)
    run(engine, request_payout, ana, 1000, nonce(1), config.money)
    before = dump(engine)
    with pytest.raises(LedgerError, match=r"payments\.sepa\.name"):
        run(engine, export_batch, config.money, config.debtor, TODAY)
    config = with_overrides(config, {"payments.sepa": {
        "name": "Op", "iban": "DE00370400440532013000", "bic": ""}})
    with pytest.raises(LedgerError, match=r"payments\.sepa: IBAN check digits"):
        run(engine, export_batch, config.money, config.debtor, TODAY)
    assert dump(engine) == before


def test_paid_and_failed_payouts(engine, sepa_config):
    ana = user_with_revenue(engine, sepa_config, "ana", 5000)
    first = run(engine, request_payout, ana, 2000, nonce(1), sepa_config.money)
    second = run(engine, request_payout, ana, 1500, nonce(2), sepa_config.money)
    with pytest.raises(LedgerError, match="only an exported payout"):
        run(engine, mark_paid, first)
    run(engine, export_batch, sepa_config.money, sepa_config.debtor, TODAY)
    assert run(engine, mark_paid, first) is True
    assert run(engine, mark_paid, first) is False
    assert run(engine, mark_failed, second) is True
    assert run(engine, mark_failed, second) is False
    with pytest.raises(LedgerError, match="is paid"):
        run(engine, mark_failed, first)
    with pytest.raises(LedgerError, match="is failed"):
        run(engine, mark_paid, second)
    money = all_balances(engine)
    assert money["pending_payouts:sepa"] == 0 and money["payouts:sepa"] == 2000
    assert balances(engine, ana) == {"funds": 0, "revenue": 3000}
    third = run(engine, request_payout, ana, 1000, nonce(3), sepa_config.money)
    assert run(engine, mark_failed, third) is True  # before export: cancelled
    assert balances(engine, ana)["revenue"] == 3000
    assert problems(engine) == []


def test_revenue_moves_to_funds_once_per_form(engine, config):
    ana = user_with_revenue(engine, config, "ana", 800, details=False)
    assert run(engine, move_revenue_to_funds, ana, 300, nonce(1)) is True
    assert run(engine, move_revenue_to_funds, ana, 300, nonce(1)) is False
    with pytest.raises(LedgerError, match="less than 600"):
        run(engine, move_revenue_to_funds, ana, 600, nonce(2))
    assert balances(engine, ana) == {"funds": 300, "revenue": 500}
    assert problems(engine) == []


def test_recording_a_payment_twice_credits_once(engine, config):
    ana = user_with_revenue(engine, config, "ana", 1, details=False)
    payment = ProviderPayment("stripe", "cs_1", "evt_1", "ana", 900, "EUR")
    assert run(engine, record_payment, payment, "EUR") == "credited"
    other_event = ProviderPayment("stripe", "cs_1", "evt_2", "ana", 900, "EUR")
    assert run(engine, record_payment, other_event, "EUR") == "duplicate"
    assert balances(engine, ana)["funds"] == 900
    assert problems(engine) == []


# --- the web pages -------------------------------------------------------------------------

async def page_nonce(client, form_id: str) -> str:
    page = await (await client.get("/money")).text()
    return NONCE.search(page[page.index(f'id="{form_id}"'):]).group(1)


async def signed_up_with_revenue(client, engine, name: str, revenue: int) -> int:
    await sign_up(client, name)
    with engine.begin() as conn:
        uid = accounts.user_id(conn, name)
        accounts.transfer(conn, accounts.system_account(conn, "incoming:test"),
                          accounts.user_account(conn, uid, "revenue"), revenue, "test",
                          f"test:{name}")
    return uid


async def test_budget_form_keeps_to_the_limits(money_client, engine):
    await sign_up(money_client, "ana")
    for amount, message in (("1.99", "between 2.00 and 500.00"), ("500.01", "between 2.00"),
                            ("ten", "a number like 12.50"), ("", "a number like")):
        reply = await post_form(money_client, "/money/budget", {"amount": amount},
                                token_from="/money")
        assert reply.status == 400, amount
        assert message in await reply.text()
    reply = await post_form(money_client, "/money/budget", {"amount": "7,5"},
                            token_from="/money")
    assert reply.status == 303 and reply.headers["Location"] == "/money?done=budget"
    page = await (await money_client.get("/money?done=budget")).text()
    assert "budget is saved" in page and 'id="budget">7.50 EUR' in page


async def test_member_moves_revenue_and_requests_a_payout(money_client, engine):
    uid = await signed_up_with_revenue(money_client, engine, "ana", 3000)
    move = {"amount": "5.00", "nonce": await page_nonce(money_client, "move-form")}
    for _ in range(2):
        reply = await post_form(money_client, "/money/revenue-to-funds", move,
                                token_from="/money")
        assert reply.status == 303
    assert balances(engine, uid) == {"funds": 500, "revenue": 2500}

    page = await (await money_client.get("/money")).text()
    assert 'id="payout-form"' not in page  # no details yet
    bad = await post_form(money_client, "/money/payout-details", {
        "holder_name": "Ana Example", "iban": "DE89 3704 0044 0532 0130 01", "bic": ""},
        token_from="/money")
    assert bad.status == 400
    text = await bad.text()
    assert "check digits" in text and "DE89 3704 0044 0532 0130 01" in text
    good = await post_form(money_client, "/money/payout-details", {
        "holder_name": "Ana Example", "iban": "DE89 3704 0044 0532 0130 00", "bic": ""},
        token_from="/money")
    assert good.status == 303

    below = {"amount": "9.99", "nonce": await page_nonce(money_client, "payout-form")}
    before = dump(engine)
    reply = await post_form(money_client, "/money/payouts", below, token_from="/money")
    assert reply.status == 400 and "at least 1000" in await reply.text()
    assert dump(engine) == before
    request = {"amount": "20", "nonce": await page_nonce(money_client, "payout-form")}
    for _ in range(2):
        reply = await post_form(money_client, "/money/payouts", request, token_from="/money")
        assert reply.status == 303
    assert balances(engine, uid) == {"funds": 500, "revenue": 500}
    page = await (await money_client.get("/money?done=payout")).text()
    assert "Payout requested" in page and "requested" in page
    assert problems(engine) == []


async def test_operator_exports_and_settles_payouts(money_client, engine, money_config):
    uid = await signed_up_with_revenue(money_client, engine, "ana", 5000)
    with engine.begin() as conn:
        set_payout_details(conn, uid, "Ana Example", IBANS["ana"], None)
        first = request_payout(conn, uid, 2000, nonce(1), money_config.money)
        second = request_payout(conn, uid, 1000, nonce(2), money_config.money)
    assert (await money_client.get("/ops/payouts")).status == 403
    with engine.begin() as conn:
        set_operator(conn, uid, True)
    page = await (await money_client.get("/ops/payouts")).text()
    assert "20.00 EUR" in page and IBANS["ana"] in page

    reply = await post_form(money_client, "/ops/payouts/export", {}, token_from="/ops/payouts")
    assert reply.status == 303
    download = await money_client.get(reply.headers["Location"])
    assert download.status == 200
    assert download.headers["Content-Disposition"].startswith("attachment")
    root = ET.fromstring(await download.read())
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "30.00"
    again = await post_form(money_client, "/ops/payouts/export", {}, token_from="/ops/payouts")
    assert again.status == 409 and "no payouts are waiting" in await again.text()

    paid = await post_form(money_client, f"/ops/payouts/{first}/paid", {},
                           token_from="/ops/payouts")
    assert paid.status == 303 and paid.headers["Location"] == "/ops/payouts?done=paid"
    failed = await post_form(money_client, f"/ops/payouts/{second}/failed", {},
                             token_from="/ops/payouts")
    assert failed.status == 303
    refused = await post_form(money_client, f"/ops/payouts/{first}/failed", {},
                              token_from="/ops/payouts")
    assert refused.status == 409
    missing = await post_form(money_client, "/ops/payouts/999/paid", {},
                              token_from="/ops/payouts")
    assert missing.status == 404
    assert balances(engine, uid)["revenue"] == 3000
    assert all_balances(engine)["payouts:sepa"] == 2000
    assert problems(engine) == []


# --- the command line ----------------------------------------------------------------------

@pytest.fixture
def cli(db_url, tmp_path, monkeypatch, capsys, debtor):
    for name in list(os.environ):
        if name.startswith("FLATTR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLATTR_DATABASE_URL", db_url)
    monkeypatch.setenv("FLATTR_DATA_DIR", str(tmp_path / "var"))
    for key, value in debtor.items():
        monkeypatch.setenv(f"FLATTR_PAYMENTS__SEPA__{key.upper()}", value)

    def command(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return command


def test_payout_commands(cli, engine, sepa_config, tmp_path):
    ana = user_with_revenue(engine, sepa_config, "ana", 5000)
    first = run(engine, request_payout, ana, 1200, nonce(1), sepa_config.money)
    second = run(engine, request_payout, ana, 1300, nonce(2), sepa_config.money)
    code, out, _ = cli("payouts", "list", "--state", "requested")
    assert code == 0 and len(out.splitlines()) == 2 and "\tana\t1200\t" in out

    out_file = tmp_path / "batch.xml"
    code, out, err = cli("payouts", "export", "--out", str(out_file))
    assert (code, err) == (0, "") and "2 payouts, total 2500" in out
    root = ET.fromstring(out_file.read_bytes())
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    code, _, err = cli("payouts", "export", "--out", str(tmp_path / "none.xml"))
    assert code == 2 and err.count("\n") == 1 and "no payouts are waiting" in err
    batch_id = run(engine, lambda conn: conn.execute(
        select(payouts_table.c.batch_id).limit(1)).scalar_one())
    again = tmp_path / "again.xml"
    assert cli("payouts", "export", "--out", str(again), "--batch", str(batch_id))[0] == 0
    assert again.read_bytes() == out_file.read_bytes()

    assert cli("payouts", "paid", str(first))[0] == 0
    assert "already paid" in cli("payouts", "paid", str(first))[1]
    assert cli("payouts", "failed", str(second))[0] == 0
    for argv in (("payouts", "paid", "999"), ("payouts", "failed", str(first))):
        code, out, err = cli(*argv)
        assert code == 2 and out == "" and err.count("\n") == 1
    assert balances(engine, ana)["revenue"] == 5000 - 1200
    assert problems(engine) == []


def test_unmatched_payments_can_be_assigned(cli, engine, config):
    ana = user_with_revenue(engine, config, "ana", 1, details=False)
    ghost = ProviderPayment("stripe", "cs_ghost", "evt_9", "ghost", 700, "EUR")
    assert run(engine, record_payment, ghost, "EUR") == "unmatched"
    code, out, _ = cli("payments", "unmatched")
    assert code == 0 and "cs_ghost" in out and "ghost, who does not exist" in out
    assert cli("payments", "assign", "cs_ghost", "ana")[0] == 0
    assert balances(engine, ana)["funds"] == 700
    code, _, err = cli("payments", "assign", "cs_ghost", "ana")
    assert code == 2 and "already credited" in err
    assert cli("payments", "unmatched")[1] == ""
    assert run(engine, record_payment, ghost, "EUR") == "duplicate"
    assert balances(engine, ana)["funds"] == 700
    assert problems(engine) == []


def test_verify_notices_payouts_that_do_not_match_their_accounts(engine, sepa_config):
    ana = user_with_revenue(engine, sepa_config, "ana", 3000)
    payout = run(engine, request_payout, ana, 1000, nonce(1), sepa_config.money)
    run(engine, export_batch, sepa_config.money, sepa_config.debtor, TODAY)
    assert problems(engine) == []
    with engine.begin() as conn:  # a payout marked paid without its transfer
        conn.execute(payouts_table.update().where(payouts_table.c.id == payout)
                     .values(state="paid", settled_at=payouts_table.c.exported_at))
    assert problems(engine) == [
        "account pending_payouts:sepa holds 1000, its payouts add up to 0",
        "account payouts:sepa holds 0, its payouts add up to 1000"]
