"""Pledges seen from the creator's side: what is waiting for an identity, from how many
supporters, what it would be worth at the next settlement with today's budgets and funds, when
it counts and when it lapses (money rules 5 and 6).

What waits for an identity: its pledges (`pledges.state = 'waiting'`) and, while it is
unclaimed, the flattrs of its things in months not settled yet, which become pledges when their
month settles. A pledge of month P counts at the first settlement, up to that of
P + `pledge_months`, in which its giver is funded and the identity is receivable; the
settlement of P + `pledge_months` + 1 lapses it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, union

from ledger.division import Candidate, settle_giver
from ledger.errors import NotFound
from ledger.months import add_months, month_of
from ledger.rules import MoneyRules
from ledger.schema import accounts, flattrs, identities, ledger_clock, pledges, things, users
from ledger.settlement import next_month_to_settle
from ledger.sql import utcnow


@dataclass(frozen=True)
class Waiting:
    """What waits for one identity."""

    identity_id: int
    platform: str
    platform_user_id: str
    username: str | None
    claimed_by: str | None  # the name of the user who claimed it
    supporters: int  # distinct givers
    flattrs: int
    estimate: int  # net the owner would receive at the next settlement, with today's money
    oldest_month: str | None
    counts_in: str  # the month whose settlement counts them
    lapses_in: str | None  # the month whose settlement lapses the oldest of them


@dataclass(frozen=True)
class CreatorPledges:
    """The pledges waiting for a member's claimed identities."""

    identities: list[Waiting]
    supporters: int  # distinct givers, over all the identities
    receiver_funded: bool  # False: with give-to-get on, they would not count today

    @property
    def estimate(self) -> int:
        return sum(w.estimate for w in self.identities)


def waiting_for_member(conn: Connection, uid: int, rules: MoneyRules,
                       now: datetime | None = None) -> CreatorPledges:
    """The pledges waiting for the identities that user `uid` has claimed, one entry per
    identity that has any."""
    rows = conn.execute(
        select(identities.c.id).where(identities.c.claimed_by == uid).order_by(identities.c.id)
    ).scalars().all()
    funded = (not rules.give_to_get
              or _amounts(conn, [uid], rules.min_monthly).get(uid, 0) > 0)
    found = _waiting(conn, rows, rules, now, receivable=funded)
    supporters = conn.execute(
        select(func.count(func.distinct(pledges.c.giver_id)))
        .where(pledges.c.identity_id.in_(rows), pledges.c.state == "waiting")).scalar_one()
    return CreatorPledges([w for w in found if w.flattrs], supporters, funded)


def waiting_for_identity(conn: Connection, platform: str, platform_user_id: str,
                         rules: MoneyRules, now: datetime | None = None) -> Waiting:
    """What waits for identity (platform, platform_user_id); its estimate supposes it were
    claimed now by a funded member. NotFound when the hub has never seen the identity."""
    iid = conn.execute(select(identities.c.id).where(
        identities.c.platform == platform, identities.c.platform_user_id == platform_user_id,
    )).scalar()
    if iid is None:
        raise NotFound(f"no {platform} identity {platform_user_id} is known here")
    return _waiting(conn, [iid], rules, now, receivable=True)[0]


def _waiting(conn: Connection, iids: Collection[int], rules: MoneyRules,
             now: datetime | None, *, receivable: bool) -> list[Waiting]:
    if not iids:
        return []
    counts_in = next_month_to_settle(conn) or month_of(now or utcnow())
    last_closed = conn.execute(select(ledger_clock.c.last_closed_month)).scalar() or ""
    items = _items(iids, last_closed).subquery("items")
    summary = {row.identity_id: row for row in conn.execute(
        select(items.c.identity_id, func.count(func.distinct(items.c.giver_id)).label("givers"),
               func.count().label("flattrs"), func.min(items.c.month).label("oldest"))
        .group_by(items.c.identity_id))}
    estimates = (_estimates(conn, iids, items, counts_in, rules) if receivable
                 else defaultdict(int))
    pledge_months = rules.pledge_months
    found = []
    for row in conn.execute(
        select(identities.c.id, identities.c.platform, identities.c.platform_user_id,
               identities.c.username, users.c.name)
        .outerjoin(users, users.c.id == identities.c.claimed_by)
        .where(identities.c.id.in_(iids)).order_by(identities.c.id)
    ):
        total = summary.get(row.id)
        oldest = total.oldest if total else None
        found.append(Waiting(
            identity_id=row.id, platform=row.platform, platform_user_id=row.platform_user_id,
            username=row.username, claimed_by=row.name,
            supporters=total.givers if total else 0, flattrs=total.flattrs if total else 0,
            estimate=estimates[row.id], oldest_month=oldest, counts_in=counts_in,
            lapses_in=add_months(oldest, pledge_months + 1) if oldest else None))
    return found


def _items(iids: Collection[int], last_closed: str) -> Any:
    """(identity_id, giver_id, flattr_id, month) of everything waiting for the identities: their
    waiting pledges, and the flattrs of open months of those still unclaimed."""
    waiting = (select(pledges.c.identity_id, pledges.c.giver_id, pledges.c.flattr_id,
                      pledges.c.month)
               .where(pledges.c.identity_id.in_(iids), pledges.c.state == "waiting"))
    pending = (select(identities.c.id.label("identity_id"), flattrs.c.giver_id,
                      flattrs.c.id.label("flattr_id"), flattrs.c.month)
               .select_from(flattrs.join(things, things.c.id == flattrs.c.thing_id)
                            .join(identities, identities.c.id == things.c.owner_identity_id))
               .where(identities.c.id.in_(iids), identities.c.claimed_by.is_(None),
                      flattrs.c.month > last_closed, flattrs.c.retracted_at.is_(None)))
    return union(waiting, pending)


def _estimates(conn: Connection, iids: Collection[int], items: Any, month: str,
               rules: MoneyRules) -> dict[int, int]:
    """Per identity, the net its owner would receive for the waiting `items` if `month` were
    settled now with today's budgets and funds: each giver's amount divided over what would
    count for them (rules 1, 5 and 6), the identities in `iids` taken as receivable."""
    oldest_kept = add_months(month, -rules.pledge_months)
    givers = select(items.c.giver_id).distinct().scalar_subquery()
    waiting = set(conn.execute(select(items.c.flattr_id)).scalars())
    carried = select(pledges.c.flattr_id).where(
        pledges.c.giver_id.in_(givers), pledges.c.state == "waiting",
        pledges.c.month >= oldest_kept)
    rows = conn.execute(
        select(flattrs.c.id, flattrs.c.giver_id, flattrs.c.thing_id, flattrs.c.occurred_at,
               identities.c.id.label("identity_id"), identities.c.claimed_by)
        .select_from(flattrs.join(things, things.c.id == flattrs.c.thing_id)
                     .join(identities, identities.c.id == things.c.owner_identity_id))
        .where(flattrs.c.giver_id.in_(givers), or_(
            and_(flattrs.c.month == month, flattrs.c.retracted_at.is_(None)),
            flattrs.c.id.in_(carried)))
    ).all()
    min_monthly = rules.min_monthly
    people = {r.giver_id for r in rows} | {r.claimed_by for r in rows if r.claimed_by}
    amounts = _amounts(conn, people, min_monthly)
    targets = set(iids)

    def counts(row: Any) -> bool:
        if row.identity_id in targets:
            return row.claimed_by != row.giver_id
        if row.claimed_by is None or row.claimed_by == row.giver_id:
            return False
        return not rules.give_to_get or amounts.get(row.claimed_by, 0) > 0

    by_giver: dict[int, list[Candidate]] = defaultdict(list)
    identity_of = {}
    for row in rows:
        if counts(row):
            by_giver[row.giver_id].append(
                Candidate(row.id, row.thing_id, row.claimed_by or 0, row.occurred_at))
            identity_of[row.id] = row.identity_id
    estimates: dict[int, int] = defaultdict(int)
    for giver, candidates in by_giver.items():
        for share in settle_giver(amounts.get(giver, 0), candidates, rules.fee_bps):
            if share.flattr_id in waiting:
                estimates[identity_of[share.flattr_id]] += share.net
    return estimates


def _amounts(conn: Connection, uids: Collection[int], min_monthly: int) -> dict[int, int]:
    """Today's A = min(budget, funds) of each user, 0 for those below `min_monthly`."""
    if not uids:
        return {}
    found = {}
    for row in conn.execute(
        select(users.c.id, users.c.budget, accounts.c.balance)
        .join(accounts, and_(accounts.c.user_id == users.c.id, accounts.c.kind == "funds"))
        .where(users.c.id.in_(list(uids)))
    ):
        amount = min(row.budget or 0, row.balance)
        found[row.id] = amount if amount >= min_monthly else 0
    return found
