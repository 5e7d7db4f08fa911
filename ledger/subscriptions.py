"""Subscriptions (rule 7): a standing order to flattr a thing at the first instant of each of
3, 6 or 12 months, starting with the oldest open month. Settlement materialises them.

Pausing sets `cancelled_at`, which settlement reads as "makes no flattr": a month whose
settlement starts while the subscription is paused gets no flattr from it, and pausing does not
lengthen the term. Resuming clears it. Deleting removes the standing order; the flattrs it has
already made stay. A giver has at most one current (not yet ended) subscription per thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update

from ledger.errors import LedgerError, NotFound
from ledger.months import add_months, month_of
from ledger.schema import identities, ledger_clock, subscriptions, things
from ledger.sql import utcnow

TERMS = (3, 6, 12)


class SubscriptionRefused(LedgerError):
    """`code` is Flattr's: `thing_owner` (own thing) or `subscribed` (already)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Subscription:
    id: int
    thing_id: int
    months: int
    start_month: str
    created_at: datetime
    active: bool
    months_left: int


def open_month(conn: Connection, now: datetime) -> str:
    """The oldest month still open: now's month, or the one after the last closed."""
    last_closed = conn.execute(select(ledger_clock.c.last_closed_month)).scalar()
    current = month_of(now)
    return max(current, add_months(last_closed, 1)) if last_closed else current


def subscribe(conn: Connection, uid: int, thing_id: int, months: int = 12,
              now: datetime | None = None) -> Subscription:
    """Subscribe user `uid` to the thing for `months` (3, 6 or 12) from the oldest open month.
    Raises NotFound, LedgerError (bad term), SubscriptionRefused (own thing, already)."""
    now = now or utcnow()
    if months not in TERMS:
        raise LedgerError("months must be 3, 6 or 12")
    owner = conn.execute(
        select(identities.c.claimed_by).join(things, things.c.owner_identity_id == identities.c.id)
        .where(things.c.id == thing_id)).first()
    if owner is None:
        raise NotFound("no such thing")
    if owner.claimed_by == uid:
        raise SubscriptionRefused("thing_owner", "you cannot subscribe to your own thing")
    if _current(conn, uid, thing_id, now) is not None:
        raise SubscriptionRefused("subscribed", "you already subscribe to this thing")
    start = open_month(conn, now)
    sid = conn.execute(subscriptions.insert().values(
        user_id=uid, thing_id=thing_id, months=months, start_month=start, created_at=now)
        .returning(subscriptions.c.id)).scalar_one()
    return Subscription(sid, thing_id, months, start, now, True, months)


def subscriptions_of(conn: Connection, uid: int, now: datetime | None = None
                     ) -> list[Subscription]:
    """User `uid`'s current subscriptions (running or paused), newest first."""
    month = open_month(conn, now or utcnow())
    rows = conn.execute(select(subscriptions).where(subscriptions.c.user_id == uid)
                        .order_by(subscriptions.c.id.desc())).all()
    return [_subscription(row, month) for row in rows
            if month < add_months(row.start_month, row.months)]


def toggle(conn: Connection, uid: int, thing_id: int, now: datetime | None = None
           ) -> Subscription:
    """Pause a running subscription or resume a paused one; NotFound when there is none."""
    now = now or utcnow()
    row = _current(conn, uid, thing_id, now)
    if row is None:
        raise NotFound("you do not subscribe to this thing")
    conn.execute(update(subscriptions).where(subscriptions.c.id == row.id)
                 .values(cancelled_at=None if row.cancelled_at else now))
    return _subscription(conn.execute(select(subscriptions).where(
        subscriptions.c.id == row.id)).one(), open_month(conn, now))


def unsubscribe(conn: Connection, uid: int, thing_id: int, now: datetime | None = None) -> None:
    """Delete the current subscription; NotFound when there is none."""
    row = _current(conn, uid, thing_id, now or utcnow())
    if row is None:
        raise NotFound("you do not subscribe to this thing")
    conn.execute(delete(subscriptions).where(subscriptions.c.id == row.id))


def subscribed_things(conn: Connection, uid: int, thing_ids: list[int],
                      now: datetime | None = None) -> set[int]:
    """Which of `thing_ids` user `uid` currently subscribes to (running or paused)."""
    wanted = set(thing_ids)
    return {s.thing_id for s in subscriptions_of(conn, uid, now) if s.thing_id in wanted}


def _current(conn: Connection, uid: int, thing_id: int, now: datetime) -> Row[Any] | None:
    month = open_month(conn, now)
    rows = conn.execute(select(subscriptions).where(
        subscriptions.c.user_id == uid, subscriptions.c.thing_id == thing_id)
        .with_for_update()).all()
    return next((row for row in rows if month < add_months(row.start_month, row.months)), None)


def _subscription(row: Row[Any], month: str) -> Subscription:
    end = add_months(row.start_month, row.months)
    left = sum(1 for i in range(row.months) if add_months(month, i) < end)
    return Subscription(row.id, row.thing_id, row.months, row.start_month, row.created_at,
                        row.cancelled_at is None, left)
