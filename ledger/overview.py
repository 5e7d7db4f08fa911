"""A member's money at a glance, for the dashboard: this month so far (the statement with its
estimates), the balances, every earlier month's totals, and the pledges waiting for the
identities they have claimed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ledger.accounts import balances
from ledger.history import MonthTotals, monthly_totals
from ledger.months import month_of
from ledger.pledges import CreatorPledges, waiting_for_member
from ledger.rules import MoneyRules
from ledger.sql import utcnow
from ledger.statement import statement

# Statuses of a flattr given, grouped as the dashboard counts them.
GROUPS = {"counted": "counts", "pending": "counts", "pending_pledge": "pledges",
          "pledged": "pledges", "retracted": "retracted"}


@dataclass(frozen=True)
class Overview:
    month: str
    statement: dict[str, Any]  # this month so far, with estimates while it is open
    counts: dict[str, int]  # flattrs of this month that count, wait as pledges, were retracted
    estimate: int  # what this month's flattrs would cost if it were settled now
    balances: dict[str, int]
    history: list[MonthTotals]  # earlier months, oldest first
    creator: CreatorPledges


def overview(conn: Connection, uid: int, rules: MoneyRules,
             now: datetime | None = None) -> Overview:
    """The dashboard of user `uid` at `now` (default: the current time)."""
    month = month_of(now or utcnow())
    report = statement(conn, uid, month, rules)
    counts = {"counts": 0, "pledges": 0, "retracted": 0}
    for given in report["given"]:
        group = GROUPS.get(given["status"])
        if group:
            counts[group] += 1
    estimate = sum(g.get("estimate", g["share"]) for g in report["given"])
    return Overview(month, report, counts, estimate, balances(conn, uid),
                    monthly_totals(conn, uid, before=month),
                    waiting_for_member(conn, uid, rules, now))
