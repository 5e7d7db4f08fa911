"""Users, their funds and revenue accounts, system accounts and double-entry transfers.

A transfer moves `amount` from its debit account to its credit account. User accounts never go
below zero (checked here and by a CHECK constraint); system accounts (`fees`,
`incoming:<provider>`, `payouts:<provider>`) may, so that all balances always sum to zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy import Connection, bindparam, select, update

from ledger.errors import IdempotencyConflict, InsufficientFunds, LedgerError, NotFound
from ledger.rules import MoneyRules
from ledger.schema import accounts, transfers, users
from ledger.sql import dialect_insert, utcnow

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SYSTEM_ACCOUNT = re.compile(r"^(fees|(incoming|payouts|pending_payouts):[a-z0-9_-]{1,32})$")
USER_KINDS = ("funds", "revenue")
# The most one transfer moves (10^15 minor units: ten trillion euros). Together with the check
# that no balance leaves the signed 64-bit range, stored balances stay integers on every
# backend (SQLite turns an integer sum past 64 bits into a float).
MAX_AMOUNT = 10**15
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def create_user(conn: Connection, name: str) -> int:
    """Create user `name` with empty funds and revenue accounts; return the user id."""
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise LedgerError("user name must be 1-64 letters, digits, '.', '_' or '-'")
    if conn.execute(select(users.c.id).where(users.c.name == name)).first():
        raise LedgerError(f"user {name} already exists")
    uid = conn.execute(
        users.insert().values(name=name, created_at=utcnow()).returning(users.c.id)
    ).scalar_one()
    conn.execute(accounts.insert(), [
        {"name": f"user:{uid}:{kind}", "user_id": uid, "kind": kind} for kind in USER_KINDS
    ])
    return uid


def user_id(conn: Connection, name: str) -> int:
    """The id of user `name`; NotFound if there is none."""
    found = conn.execute(select(users.c.id).where(users.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no user named {name}")
    return found


def set_budget(conn: Connection, uid: int, amount: int, rules: MoneyRules) -> None:
    """Set the monthly budget B, which must lie within [min_monthly, max_monthly]."""
    low, high = rules.min_monthly, rules.max_monthly
    if not _is_amount(amount) or not low <= amount <= high:
        raise LedgerError(f"budget must be between {low} and {high} minor units")
    conn.execute(update(users).where(users.c.id == uid).values(budget=amount))


def user_account(conn: Connection, uid: int, kind: str) -> int:
    """The id of user `uid`'s `funds` or `revenue` account."""
    found = conn.execute(
        select(accounts.c.id).where(accounts.c.user_id == uid, accounts.c.kind == kind)
    ).scalar()
    if found is None:
        raise NotFound(f"user {uid} has no {kind} account")
    return found


def system_account(conn: Connection, name: str) -> int:
    """The id of system account `name` (`fees`, `incoming:stripe`, …), created on first use."""
    if not SYSTEM_ACCOUNT.match(name):
        raise LedgerError(f"{name!r} is not a system account name")
    conn.execute(
        dialect_insert(conn, accounts)
        .values(name=name, kind="system")
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return conn.execute(select(accounts.c.id).where(accounts.c.name == name)).scalar_one()


def transfer(conn: Connection, debit_id: int, credit_id: int, amount: int, reason: str,
             key: str, *, month: str | None = None) -> bool:
    """Move `amount` from account `debit_id` to `credit_id` once per idempotency `key`.

    Returns False, moving nothing, when `key` was already used for this same transfer; raises
    IdempotencyConflict when it was used for a different one, InsufficientFunds when a user
    account would go below zero.
    """
    if not _is_amount(amount) or amount <= 0:
        raise LedgerError("amount must be a positive whole number of minor units")
    if amount > MAX_AMOUNT:
        raise LedgerError(f"amount exceeds the ledger's limit of {MAX_AMOUNT} minor units")
    if not key or not reason:
        raise LedgerError("a transfer needs a reason and an idempotency key")
    debit = conn.execute(
        select(accounts.c.kind, accounts.c.balance).where(accounts.c.id == debit_id)
        .with_for_update()
    ).first()
    if debit is None:
        raise NotFound(f"account {debit_id} does not exist")
    done = conn.execute(
        select(transfers.c.debit_id, transfers.c.credit_id, transfers.c.amount)
        .where(transfers.c.idempotency_key == key)
    ).first()
    if done is not None:
        if tuple(done) != (debit_id, credit_id, amount):
            raise IdempotencyConflict(f"idempotency key {key} was used for another transfer")
        return False
    if debit.kind != "system" and debit.balance < amount:
        raise InsufficientFunds(f"balance {debit.balance} is less than {amount}")
    credited = conn.execute(select(accounts.c.balance).where(accounts.c.id == credit_id)).scalar()
    if credited is None:
        raise NotFound(f"account {credit_id} does not exist")
    if debit.balance - amount < INT64_MIN or credited + amount > INT64_MAX:
        raise LedgerError("the transfer would take a balance beyond 64 bits")
    conn.execute(transfers.insert().values(
        debit_id=debit_id, credit_id=credit_id, amount=amount, reason=reason,
        idempotency_key=key, month=month, created_at=utcnow(),
    ))
    apply_deltas(conn, {debit_id: -amount, credit_id: amount})
    return True


def apply_deltas(conn: Connection, deltas: Mapping[int, int]) -> None:
    """Add each delta to its account's stored balance (transfers must already be written)."""
    rows = [{"account": account, "delta": delta} for account, delta in deltas.items() if delta]
    if rows:
        conn.execute(
            update(accounts)
            .where(accounts.c.id == bindparam("account"))
            .values(balance=accounts.c.balance + bindparam("delta")),
            rows,
        )


def credit_funds(conn: Connection, uid: int, amount: int, reason: str, key: str,
                 provider: str = "manual") -> bool:
    """Money arrived from `provider` for user `uid`: `incoming:<provider>` → the user's funds."""
    source = system_account(conn, f"incoming:{provider}")
    return transfer(conn, source, user_account(conn, uid, "funds"), amount, reason, key)


def balances(conn: Connection, uid: int) -> dict[str, int]:
    """The user's stored balances: `{"funds": …, "revenue": …}`."""
    rows = conn.execute(
        select(accounts.c.kind, accounts.c.balance).where(accounts.c.user_id == uid)
    ).all()
    if not rows:
        raise NotFound(f"user {uid} does not exist")
    return {kind: balance for kind, balance in rows}


def _is_amount(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
