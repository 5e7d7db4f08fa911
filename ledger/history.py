"""A user's months at a glance: per month, the flattrs given, what they gave and paid in fees,
and what they received — the totals of each month's statement, in three grouped queries."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from ledger.schema import flattrs, ledger_clock, shares


@dataclass(frozen=True)
class MonthTotals:
    month: str
    settled: bool
    flattrs: int  # flattrs dated in the month, whatever became of them
    given: int  # shares given (settled months), fees included
    fees: int
    received: int  # net received


def monthly_totals(conn: Connection, uid: int, before: str | None = None) -> list[MonthTotals]:
    """The months in which user `uid` flattred, gave or received, oldest first; only those
    before `before` when it is given."""
    last_closed = conn.execute(select(ledger_clock.c.last_closed_month)).scalar() or ""
    counted: dict[str, int] = dict(conn.execute(
        select(flattrs.c.month, func.count()).where(flattrs.c.giver_id == uid)
        .group_by(flattrs.c.month)).all())
    given = {row.month: row for row in conn.execute(
        select(shares.c.month, func.sum(shares.c.share).label("share"),
               func.sum(shares.c.fee).label("fee"))
        .where(shares.c.giver_id == uid).group_by(shares.c.month))}
    received = dict(conn.execute(
        select(shares.c.month, func.sum(shares.c.net)).where(shares.c.receiver_id == uid)
        .group_by(shares.c.month)).all())
    months = sorted(set(counted) | set(given) | set(received))
    return [
        MonthTotals(
            month=month, settled=month <= last_closed, flattrs=counted.get(month, 0),
            given=int(given[month].share) if month in given else 0,
            fees=int(given[month].fee) if month in given else 0,
            received=int(received.get(month, 0)))
        for month in months if before is None or month < before
    ]
