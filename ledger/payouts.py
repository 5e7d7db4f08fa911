"""Money out, and what a user does with revenue: the overview of the money page, moving
revenue to funds, payout details, payout requests, and the operator's side of payouts (SEPA
batches, marking payouts paid or failed).

A payout request moves the amount at once from the user's revenue to `pending_payouts:sepa`;
marking it paid moves it on to `payouts:sepa`, marking it failed moves it back to revenue. Each
of those is a transfer with its own idempotency key, and a payout's state changes in the same
transaction as its transfer. Requests from the web carry a per-form nonce, so submitting a form
twice moves money once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from ledger.accounts import balances, system_account, transfer, user_account
from ledger.errors import IdempotencyConflict, InsufficientFunds, LedgerError, NotFound
from ledger.money_schema import payout_batches, payout_details, payouts
from ledger.payments import UnmatchedPayment, unmatched_payments
from ledger.rules import Debtor, MoneyRules
from ledger.schema import accounts, users
from ledger.sepa import Transfer, credit_transfer_file, normalise_bic, normalise_iban
from ledger.sql import dialect_insert, utcnow

PENDING = "pending_payouts:sepa"
PAID = "payouts:sepa"
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
OPEN_STATES = ("requested", "exported")


@dataclass(frozen=True, slots=True)
class PayoutDetails:
    holder_name: str
    iban: str
    bic: str | None


@dataclass(frozen=True, slots=True)
class Payout:
    id: int
    user: str
    amount: int
    state: str
    holder_name: str
    iban: str
    bic: str | None
    batch_id: int | None
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    message_id: str
    payouts: int
    total: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the money page shows a user."""

    funds: int
    revenue: int
    budget: int | None
    details: PayoutDetails | None
    payouts: list[Payout]


@dataclass(frozen=True, slots=True)
class Operations:
    """Everything the operator's payouts page shows."""

    open: list[Payout]
    batches: list[Batch]
    unmatched: list[UnmatchedPayment]


def overview(conn: Connection, uid: int) -> Overview:
    """The user's balances, budget, payout details and latest 20 payouts."""
    money = balances(conn, uid)
    budget = conn.execute(select(users.c.budget).where(users.c.id == uid)).scalar()
    return Overview(money["funds"], money["revenue"], budget, _details(conn, uid),
                    _payouts(conn, payouts.c.user_id == uid, newest_first=True, limit=20))


def move_revenue_to_funds(conn: Connection, uid: int, amount: int, nonce: str) -> bool:
    """Move `amount` of the user's revenue to their funds; False when this form (`nonce`) was
    already submitted, so nothing moved again."""
    _check_amount(amount)
    revenue, funds = user_account(conn, uid, "revenue"), user_account(conn, uid, "funds")
    try:
        return transfer(conn, revenue, funds, amount, "revenue moved to funds",
                        f"revenue-to-funds:{uid}:{_nonce(nonce)}")
    except InsufficientFunds:
        raise InsufficientFunds(f"you have less than {amount} minor units of revenue") from None
    except IdempotencyConflict:
        raise IdempotencyConflict("this form was already sent; reload the page") from None


def set_payout_details(conn: Connection, uid: int, holder_name: str, iban: str,
                       bic: str | None) -> PayoutDetails:
    """Store where the user's payouts go; LedgerError for a bad name, IBAN or BIC."""
    name = " ".join((holder_name or "").split())
    if not 1 <= len(name) <= 70 or not name.isprintable():
        raise LedgerError("account holder must be 1 to 70 characters")
    details = PayoutDetails(name, normalise_iban(iban), normalise_bic(bic))
    values = {"holder_name": details.holder_name, "iban": details.iban, "bic": details.bic,
              "updated_at": utcnow()}
    conn.execute(dialect_insert(conn, payout_details).values(user_id=uid, **values)
                 .on_conflict_do_update(index_elements=["user_id"], set_=values))
    return details


def request_payout(conn: Connection, uid: int, amount: int, nonce: str,
                   rules: MoneyRules) -> int:
    """Withdraw `amount` (at least `payout_minimum`, at most `payments.max_payout`) of revenue
    to the user's bank account; the payout id. Submitting the same form (`nonce`) again
    returns the same payout."""
    _check_amount(amount)
    minimum = rules.payout_minimum
    if amount < minimum:
        raise LedgerError(f"a payout must be at least {minimum} minor units")
    maximum = rules.max_payout
    if amount > maximum:
        raise LedgerError(f"a payout can be at most {maximum} minor units")
    key = f"payout-request:{uid}:{_nonce(nonce)}"
    done = conn.execute(select(payouts.c.id, payouts.c.amount)
                        .where(payouts.c.request_key == key)).first()
    if done is not None:
        if done.amount != amount:
            raise IdempotencyConflict("this form was already sent; reload the page")
        return done.id
    details = _details(conn, uid)
    if details is None:
        raise LedgerError("add your payout details (account holder and IBAN) first")
    try:
        moved = transfer(conn, user_account(conn, uid, "revenue"), system_account(conn, PENDING),
                         amount, "payout requested", key)
    except InsufficientFunds:
        raise InsufficientFunds(f"you have less than {amount} minor units of revenue") from None
    if not moved:
        # A concurrent submit of the same form committed first.
        return conn.execute(select(payouts.c.id).where(payouts.c.request_key == key)).scalar_one()
    return conn.execute(payouts.insert().values(
        user_id=uid, amount=amount, state="requested", holder_name=details.holder_name,
        iban=details.iban, bic=details.bic, request_key=key, requested_at=utcnow(),
    ).returning(payouts.c.id)).scalar_one()


def operations(conn: Connection) -> Operations:
    """Open payouts (requested or exported, oldest first), the newest batches, and payments
    that credited nobody."""
    return Operations(_payouts(conn, payouts.c.state.in_(OPEN_STATES)), batches(conn),
                      unmatched_payments(conn))


def list_payouts(conn: Connection, state: str | None = None) -> list[Payout]:
    """Every payout (or those in `state`), oldest first."""
    return _payouts(conn, payouts.c.state == state if state else None)


def batches(conn: Connection, limit: int = 20) -> list[Batch]:
    """The newest exported SEPA batches."""
    rows = conn.execute(
        select(payout_batches.c.id, payout_batches.c.message_id, payout_batches.c.payouts,
               payout_batches.c.total, payout_batches.c.created_at)
        .order_by(payout_batches.c.id.desc()).limit(limit)
    ).all()
    return [Batch(*row) for row in rows]


def export_batch(conn: Connection, rules: MoneyRules, debtor: Debtor,
                 execution_date: date) -> Batch:
    """Put every requested payout into one new SEPA credit transfer batch (they become
    `exported`); LedgerError when none is waiting or the debtor account is not configured."""
    account = _debtor(debtor)
    rows = conn.execute(
        select(payouts.c.id, payouts.c.amount, payouts.c.holder_name, payouts.c.iban,
               payouts.c.bic)
        .where(payouts.c.state == "requested").order_by(payouts.c.id).with_for_update()
    ).all()
    if not rows:
        raise LedgerError("no payouts are waiting to be exported")
    transfers = [Transfer(row.holder_name, row.iban, row.bic, row.amount,
                          f"FLATTR-PAYOUT-{row.id}", f"Flattr Hub payout {row.id}")
                 for row in rows]
    message_id, xml = credit_transfer_file(account, rules.currency, transfers,
                                           execution_date)
    now = utcnow()
    total = sum(row.amount for row in rows)
    batch_id = conn.execute(payout_batches.insert().values(
        message_id=message_id, payouts=len(rows), total=total, xml=xml.decode("utf-8"),
        created_at=now,
    ).returning(payout_batches.c.id)).scalar_one()
    conn.execute(update(payouts).where(payouts.c.id.in_([row.id for row in rows]))
                 .values(state="exported", batch_id=batch_id, exported_at=now))
    return Batch(batch_id, message_id, len(rows), total, now)


def batch_file(conn: Connection, batch_id: int) -> bytes:
    """The XML of an exported batch, exactly as it was first written."""
    xml = conn.execute(select(payout_batches.c.xml)
                       .where(payout_batches.c.id == batch_id)).scalar()
    if xml is None:
        raise NotFound(f"no payout batch {batch_id}")
    return xml.encode("utf-8")


def mark_paid(conn: Connection, payout_id: int) -> bool:
    """The bank paid an exported payout: `pending_payouts:sepa` → `payouts:sepa`. False when
    it was already marked paid."""
    row = _lock(conn, payout_id)
    if row.state == "paid":
        return False
    if row.state != "exported":
        raise LedgerError(f"payout {payout_id} is {row.state}; only an exported payout can be "
                          "marked paid")
    transfer(conn, system_account(conn, PENDING), system_account(conn, PAID), row.amount,
             f"payout {payout_id} paid", f"payout:{payout_id}:paid")
    _settle(conn, payout_id, "paid")
    return True


def mark_failed(conn: Connection, payout_id: int) -> bool:
    """The payout could not be made: its amount goes back to the user's revenue. False when it
    was already marked failed."""
    row = _lock(conn, payout_id)
    if row.state == "failed":
        return False
    if row.state == "paid":
        raise LedgerError(f"payout {payout_id} is paid; it can not fail any more")
    transfer(conn, system_account(conn, PENDING), user_account(conn, row.user_id, "revenue"),
             row.amount, f"payout {payout_id} failed", f"payout:{payout_id}:failed")
    _settle(conn, payout_id, "failed")
    return True


def _lock(conn: Connection, payout_id: int) -> Any:
    row = conn.execute(select(payouts.c.state, payouts.c.amount, payouts.c.user_id)
                       .where(payouts.c.id == payout_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"no payout {payout_id}")
    return row


def _settle(conn: Connection, payout_id: int, state: str) -> None:
    conn.execute(update(payouts).where(payouts.c.id == payout_id)
                 .values(state=state, settled_at=utcnow()))


def _details(conn: Connection, uid: int) -> PayoutDetails | None:
    row = conn.execute(select(payout_details.c.holder_name, payout_details.c.iban,
                              payout_details.c.bic)
                       .where(payout_details.c.user_id == uid)).first()
    return None if row is None else PayoutDetails(*row)


def _payouts(conn: Connection, where: Any, *, newest_first: bool = False,
             limit: int | None = None) -> list[Payout]:
    query = (select(payouts.c.id, users.c.name, payouts.c.amount, payouts.c.state,
                    payouts.c.holder_name, payouts.c.iban, payouts.c.bic, payouts.c.batch_id,
                    payouts.c.requested_at)
             .join(users, users.c.id == payouts.c.user_id)
             .order_by(payouts.c.id.desc() if newest_first else payouts.c.id).limit(limit))
    if where is not None:
        query = query.where(where)
    return [Payout(*row) for row in conn.execute(query)]


def _debtor(sepa: Debtor) -> dict[str, Any]:
    if not sepa.name.strip() or not sepa.iban.strip():
        raise LedgerError("set payments.sepa.name and payments.sepa.iban (the account payouts "
                          "are paid from) to export payouts")
    try:
        return {"name": sepa.name.strip(), "iban": normalise_iban(sepa.iban),
                "bic": normalise_bic(sepa.bic)}
    except LedgerError as exc:
        raise LedgerError(f"payments.sepa: {exc}") from None


def _check_amount(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise LedgerError("amount must be a positive whole number of minor units")


def _nonce(nonce: str) -> str:
    if not isinstance(nonce, str) or not NONCE.match(nonce):
        raise LedgerError("the form has expired; reload the page and try again")
    return nonce


def payout_problems(conn: Connection) -> list[str]:
    """For `ledger verify`: `pending_payouts:sepa` holds exactly the open payouts and
    `payouts:sepa` exactly the paid ones."""
    problems = []
    for account, states in ((PENDING, OPEN_STATES), (PAID, ("paid",))):
        held = conn.execute(select(accounts.c.balance)
                            .where(accounts.c.name == account)).scalar() or 0
        owed = conn.execute(select(func.coalesce(func.sum(payouts.c.amount), 0))
                            .where(payouts.c.state.in_(states))).scalar_one()
        if held != owed:
            problems.append(f"account {account} holds {held}, its payouts add up to {owed}")
    return problems
