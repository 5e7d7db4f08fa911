"""A user's monthly statement: each flattr given with its share, fee and net, the pledges
waiting, and what was received. Plain dicts, for the command line, pages and CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from ledger.division import Candidate, settle_giver
from ledger.months import parse_month
from ledger.rules import MoneyRules
from ledger.schema import (
    accounts,
    flattrs,
    identities,
    ledger_clock,
    pledges,
    settlement_snapshot,
    shares,
    things,
    users,
)


def statement(conn: Connection, uid: int, month: str,
              rules: MoneyRules) -> dict[str, Any]:
    """The statement of user `uid` for `month`. For a month not settled yet, each pending
    flattr carries `estimate`: its share if the month were settled now with today's budget and
    funds (pledges carried in from earlier months are not foreseen)."""
    parse_month(month)
    last_closed = conn.execute(select(ledger_clock.c.last_closed_month)).scalar()
    settled = last_closed is not None and month <= last_closed
    snap = conn.execute(
        select(settlement_snapshot.c.amount, settlement_snapshot.c.funded)
        .where(settlement_snapshot.c.month == month, settlement_snapshot.c.user_id == uid)
    ).first()
    given = [_given_row(row, uid, month, settled, snap) for row in conn.execute(
        select(flattrs.c.id, flattrs.c.thing_id, flattrs.c.month, flattrs.c.occurred_at,
               flattrs.c.late,
               flattrs.c.retracted_at, flattrs.c.source, things.c.platform, things.c.content_id,
               things.c.url, things.c.title, identities.c.claimed_by, shares.c.month.label("sm"),
               shares.c.share, shares.c.fee, shares.c.net, pledges.c.state.label("pledge"),
               pledges.c.counted_month)
        .select_from(flattrs.join(things, things.c.id == flattrs.c.thing_id)
                     .join(identities, identities.c.id == things.c.owner_identity_id)
                     .outerjoin(shares, shares.c.flattr_id == flattrs.c.id)
                     .outerjoin(pledges, pledges.c.flattr_id == flattrs.c.id))
        .where(flattrs.c.giver_id == uid,
               or_(flattrs.c.month == month, and_(shares.c.month == month)))
        .order_by(flattrs.c.occurred_at, flattrs.c.id)
    )]
    waiting = [
        {"flattr_id": r.flattr_id, "month": r.month, "platform": r.platform,
         "content_id": r.content_id, "owner": r.platform_user_id}
        for r in conn.execute(
            select(pledges.c.flattr_id, pledges.c.month, things.c.platform, things.c.content_id,
                   identities.c.platform_user_id)
            .join(flattrs, flattrs.c.id == pledges.c.flattr_id)
            .join(things, things.c.id == flattrs.c.thing_id)
            .join(identities, identities.c.id == pledges.c.identity_id)
            .where(pledges.c.giver_id == uid, pledges.c.state == "waiting")
            .order_by(pledges.c.month, pledges.c.flattr_id))
    ]
    received = [
        {"flattr_id": r.flattr_id, "giver": r.name, "platform": r.platform,
         "content_id": r.content_id, "title": r.title, "share": r.share, "fee": r.fee,
         "net": r.net}
        for r in conn.execute(
            select(shares.c.flattr_id, users.c.name, things.c.platform, things.c.content_id,
                   things.c.title, shares.c.share, shares.c.fee, shares.c.net)
            .join(users, users.c.id == shares.c.giver_id)
            .join(flattrs, flattrs.c.id == shares.c.flattr_id)
            .join(things, things.c.id == flattrs.c.thing_id)
            .where(shares.c.receiver_id == uid, shares.c.month == month)
            .order_by(shares.c.flattr_id))
    ]
    if not settled:
        _estimate(conn, uid, given, rules)
    counted = [g for g in given if g["status"] == "counted"]
    return {
        "month": month,
        "settled": settled,
        "funded": None if snap is None else bool(snap.funded),
        "amount": None if snap is None else snap.amount,
        "given": given,
        "pledges_waiting": waiting,
        "received": received,
        "totals": {
            "given": sum(g["share"] for g in counted),
            "fees": sum(g["fee"] for g in counted),
            "received_net": sum(r["net"] for r in received),
        },
    }


def _estimate(conn: Connection, uid: int, given: list[dict[str, Any]],
              rules: MoneyRules) -> None:
    budget = conn.execute(select(users.c.budget).where(users.c.id == uid)).scalar() or 0
    funds = conn.execute(select(accounts.c.balance).where(
        accounts.c.user_id == uid, accounts.c.kind == "funds")).scalar() or 0
    amount = min(budget, funds)
    pending = [g for g in given if g["status"] == "pending"]
    for g in given:
        g["estimate"] = 0
    if amount < rules.min_monthly:
        return
    by_id = {g["flattr_id"]: g for g in pending}
    candidates = [Candidate(g["flattr_id"], g["thing_id"], g["receiver_id"],
                            datetime.fromisoformat(g["occurred_at"][:-1])) for g in pending]
    for share in settle_giver(amount, candidates, rules.fee_bps):
        by_id[share.flattr_id]["estimate"] = share.share


def _given_row(row: Any, uid: int, month: str, settled: bool, snap: Any) -> dict[str, Any]:
    share = row.sm == month
    if share:
        status = "counted"
    elif row.retracted_at is not None:
        status = "retracted"
    elif not settled:
        status = "pending" if row.claimed_by else "pending_pledge"
    elif row.pledge is not None:
        status = {"waiting": "pledged", "counted": f"pledge_counted_{row.counted_month}",
                  "lapsed": "pledge_lapsed", "retracted": "retracted"}[row.pledge]
    elif row.claimed_by == uid:
        status = "self"
    elif snap is not None and not snap.funded:
        status = "unfunded"
    else:
        status = "merged"
    return {
        "flattr_id": row.id, "thing_id": row.thing_id, "receiver_id": row.claimed_by,
        "month": row.month, "occurred_at": row.occurred_at.isoformat() + "Z",
        "platform": row.platform, "content_id": row.content_id, "url": row.url,
        "title": row.title, "source": row.source, "late": bool(row.late), "status": status,
        "share": row.share if share else 0, "fee": row.fee if share else 0,
        "net": row.net if share else 0,
    }
