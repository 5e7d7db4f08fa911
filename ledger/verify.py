"""The ledger self-check (`flattr-hub ledger verify`): every invariant of the money rules,
recomputed from the rows themselves. Returns the problems found; none means the ledger holds."""

from __future__ import annotations

from sqlalchemy import Connection, and_, func, literal, or_, select
from sqlalchemy.exc import DataError, OperationalError

from ledger.accounts import INT64_MAX, INT64_MIN
from ledger.payouts import payout_problems
from ledger.schema import (
    accounts,
    flattrs,
    ledger_clock,
    pledges,
    settlement_runs,
    settlement_snapshot,
    shares,
    things,
    transfers,
    users,
)


def verify(conn: Connection) -> list[str]:
    """All problems found, each one line naming what broke; an empty list means all holds.

    Never raises for what it finds: a balance that is not a 64-bit integer is a problem, and
    a check the database can not compute (an SQLite sum past 64 bits raises "integer
    overflow") is reported as one, the other checks still run."""
    problems = _balances(conn)
    for check in (_references, _stored_balances, _runs, _shares, _settlement_transfers,
                  payout_problems):
        try:
            with conn.begin_nested():
                problems += check(conn)
        except (OperationalError, DataError, OverflowError) as exc:
            reason = getattr(exc, "orig", exc)
            problems.append(f"{check.__name__.strip('_').replace('_', ' ')} could not be "
                            f"checked: {reason} (an amount beyond 64 bits?)")
    return problems


def _balances(conn: Connection) -> list[str]:
    """Each balance a 64-bit integer, users' not negative, and all of them summing to 0 (the
    sum taken here, in Python, so it can not overflow)."""
    problems: list[str] = []
    total = 0
    for name, kind, balance in conn.execute(
            select(accounts.c.name, accounts.c.kind, accounts.c.balance)):
        if not isinstance(balance, int) or not INT64_MIN <= balance <= INT64_MAX:
            problems.append(f"account {name} holds {balance!r}: not a 64-bit whole number")
            continue
        total += balance
        if kind != "system" and balance < 0:
            problems.append(f"account {name} is negative: {balance}")
    if total != 0:
        problems.append(f"balances sum to {total}, not 0")
    return problems


def verify_snapshot(conn: Connection) -> list[str]:
    """`verify` on one consistent view of a ledger in use. On PostgreSQL the transaction is made
    REPEATABLE READ, READ ONLY first, so money moved meanwhile can not look like a broken
    invariant (`conn` must not have run a statement in this transaction yet); an SQLite
    transaction already is one snapshot."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    return verify(conn)


def _references(conn: Connection) -> list[str]:
    """What foreign keys would guarantee for the three tables that have none."""
    debit, credit = accounts.alias("debit"), accounts.alias("credit")
    giver, receiver = users.alias("giver"), users.alias("receiver")
    lost_transfers = conn.execute(
        select(func.count()).select_from(transfers)
        .outerjoin(debit, debit.c.id == transfers.c.debit_id)
        .outerjoin(credit, credit.c.id == transfers.c.credit_id)
        .where(or_(debit.c.id.is_(None), credit.c.id.is_(None)))
    ).scalar_one()
    lost_shares = conn.execute(
        select(func.count()).select_from(shares)
        .outerjoin(flattrs, flattrs.c.id == shares.c.flattr_id)
        .outerjoin(giver, giver.c.id == shares.c.giver_id)
        .outerjoin(receiver, receiver.c.id == shares.c.receiver_id)
        .where(or_(flattrs.c.id.is_(None), giver.c.id.is_(None), receiver.c.id.is_(None),
                   flattrs.c.giver_id != shares.c.giver_id))
    ).scalar_one()
    lost_flattrs = conn.execute(
        select(func.count()).select_from(flattrs)
        .outerjoin(giver, giver.c.id == flattrs.c.giver_id)
        .outerjoin(things, things.c.id == flattrs.c.thing_id)
        .where(or_(giver.c.id.is_(None), things.c.id.is_(None)))
    ).scalar_one()
    problems = []
    if lost_flattrs:
        problems.append(f"{lost_flattrs} flattrs name a giver or thing that does not exist")
    if lost_transfers:
        problems.append(f"{lost_transfers} transfers name an account that does not exist")
    if lost_shares:
        problems.append(f"{lost_shares} shares name a flattr or user that does not exist, "
                        "or another giver than their flattr's")
    return problems


def _stored_balances(conn: Connection) -> list[str]:
    moved = (
        select(transfers.c.credit_id.label("account"), transfers.c.amount.label("delta"))
        .union_all(select(transfers.c.debit_id, -transfers.c.amount))
        .subquery()
    )
    sums = (select(moved.c.account, func.sum(moved.c.delta).label("total"))
            .group_by(moved.c.account).subquery())
    rows = conn.execute(
        select(accounts.c.name, accounts.c.balance, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.account == accounts.c.id)
        .where(accounts.c.balance != func.coalesce(sums.c.total, 0))
    )
    return [f"account {name} holds {held} but its transfers sum to {want}"
            for name, held, want in rows]


def _runs(conn: Connection) -> list[str]:
    problems = []
    last_closed = conn.execute(select(ledger_clock.c.last_closed_month)).scalar()
    newest = conn.execute(select(func.max(settlement_runs.c.month))).scalar()
    if last_closed != newest:
        problems.append(f"ledger clock says {last_closed} is closed, newest run is {newest}")
    for (month,) in conn.execute(
        select(settlement_runs.c.month).where(settlement_runs.c.state != "done")
    ):
        problems.append(f"settlement of {month} is unfinished: run flattr-hub settle {month}")
    totals = (select(shares.c.month, func.count().label("n"), func.sum(shares.c.share).label("a"),
                     func.sum(shares.c.fee).label("f"))
              .group_by(shares.c.month).subquery())
    for month, run_n, run_a, run_f, n, a, f in conn.execute(
        select(settlement_runs.c.month, settlement_runs.c.flattrs, settlement_runs.c.amount,
               settlement_runs.c.fees, func.coalesce(totals.c.n, 0),
               func.coalesce(totals.c.a, 0), func.coalesce(totals.c.f, 0))
        .outerjoin(totals, totals.c.month == settlement_runs.c.month)
        .where(settlement_runs.c.state == "done")
    ):
        if (run_n, run_a, run_f) != (n, a, f):
            problems.append(f"run {month} reports {run_n} flattrs/{run_a}/{run_f} fees, "
                            f"shares say {n}/{a}/{f}")
    return problems


def _shares(conn: Connection) -> list[str]:
    problems = []
    per_giver = (select(shares.c.month, shares.c.giver_id, func.sum(shares.c.share).label("a"))
                 .group_by(shares.c.month, shares.c.giver_id).subquery())
    for month, giver, got, amount in conn.execute(
        select(per_giver.c.month, per_giver.c.giver_id, per_giver.c.a,
               settlement_snapshot.c.amount)
        .outerjoin(settlement_snapshot, and_(settlement_snapshot.c.month == per_giver.c.month,
                                             settlement_snapshot.c.user_id ==
                                             per_giver.c.giver_id))
        .where(or_(settlement_snapshot.c.amount.is_(None),
                   settlement_snapshot.c.amount != per_giver.c.a,
                   settlement_snapshot.c.funded.is_(False)))
    ):
        problems.append(f"giver {giver}'s shares of {month} sum to {got}, not A = {amount}")
    for flattr_id, month in conn.execute(
        select(shares.c.flattr_id, shares.c.month)
        .join(flattrs, flattrs.c.id == shares.c.flattr_id)
        .outerjoin(pledges, pledges.c.flattr_id == shares.c.flattr_id)
        .where(flattrs.c.month != shares.c.month,
               func.coalesce(pledges.c.counted_month, literal("")) != shares.c.month)
    ):
        problems.append(f"flattr {flattr_id} has a share in {month}, neither its month "
                        "nor a pledge counted then")
    return problems


def _settlement_transfers(conn: Connection) -> list[str]:
    """For each done month, what moved out of each giver's funds equals their shares."""
    moved = (select(transfers.c.month, transfers.c.debit_id, func.sum(transfers.c.amount)
                    .label("out"))
             .where(transfers.c.idempotency_key.like("settle:%"))
             .group_by(transfers.c.month, transfers.c.debit_id).subquery())
    owed = (select(shares.c.month, settlement_snapshot.c.funds_account_id,
                   func.sum(shares.c.share).label("a"))
            .join(settlement_snapshot, and_(settlement_snapshot.c.month == shares.c.month,
                                            settlement_snapshot.c.user_id == shares.c.giver_id))
            .group_by(shares.c.month, settlement_snapshot.c.funds_account_id).subquery())
    rows = conn.execute(
        select(owed.c.month, owed.c.funds_account_id, owed.c.a, func.coalesce(moved.c.out, 0))
        .outerjoin(moved, and_(moved.c.month == owed.c.month,
                               moved.c.debit_id == owed.c.funds_account_id))
        .where(owed.c.a != func.coalesce(moved.c.out, 0))
    )
    problems = [f"account {account} paid {out} in {month}, its shares say {owed_amount}"
                for month, account, owed_amount, out in rows]
    received = (select(transfers.c.month, transfers.c.credit_id,
                       func.sum(transfers.c.amount).label("got"))
                .where(transfers.c.idempotency_key.like("settle:%"),
                       transfers.c.idempotency_key.not_like("%:fees"))
                .group_by(transfers.c.month, transfers.c.credit_id).subquery())
    earned = (select(shares.c.month, settlement_snapshot.c.revenue_account_id,
                     func.sum(shares.c.net).label("net"))
              .join(settlement_snapshot, and_(settlement_snapshot.c.month == shares.c.month,
                                              settlement_snapshot.c.user_id ==
                                              shares.c.receiver_id))
              .group_by(shares.c.month, settlement_snapshot.c.revenue_account_id).subquery())
    problems += [f"account {account} received {got} in {month}, its shares' net is {net}"
                 for month, account, net, got in conn.execute(
                     select(earned.c.month, earned.c.revenue_account_id, earned.c.net,
                            func.coalesce(received.c.got, 0))
                     .outerjoin(received, and_(received.c.month == earned.c.month,
                                               received.c.credit_id ==
                                               earned.c.revenue_account_id))
                     .where(earned.c.net != func.coalesce(received.c.got, 0)))]
    orphan = conn.execute(
        select(func.count()).select_from(moved)
        .outerjoin(owed, and_(owed.c.month == moved.c.month,
                              owed.c.funds_account_id == moved.c.debit_id))
        .where(owed.c.a.is_(None))
    ).scalar_one()
    if orphan:
        problems.append(f"{orphan} settlement transfers have no shares behind them")
    unmarked = conn.execute(
        select(func.count()).select_from(pledges)
        .join(shares, shares.c.flattr_id == pledges.c.flattr_id)
        .where(pledges.c.state != "counted")
    ).scalar_one()
    if unmarked:
        problems.append(f"{unmarked} pledges have a share but are not marked counted")
    return problems
