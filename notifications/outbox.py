"""Recording notices in the outbox, in the transaction of what causes them.

- `identity_claimed`: a user claimed an identity; each other giver whose flattrs of its things
  are still waiting (pledges, and flattrs of months not yet settled) is told, by e-mail, that
  someone they pledged to joined, unless they turned that off or gave no e-mail address.
- `record_for_ingest`: flattrs that `ingest` recorded as pledges (their owner identity is not
  claimed); the creator of each such identity is told once ever that pledges wait, when the
  operator opted its platform in (`notifications.platforms`) and the creator did not opt out.

Nothing is sent here: `notifications.delivery` sends what is recorded, after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, or_, select, tuple_, union, update

from base.config import Settings
from base.tables.members import logins, verified_email
from base.tables.notifications import (
    notification_optouts,
    notification_outbox,
    notification_settings,
)
from ledger.events import NormalisedEvent
from ledger.ingest import IngestResult
from ledger.schema import flattrs, identities, ledger_clock, pledges, things
from ledger.sql import dialect_insert, utcnow


def identity_claimed(conn: Connection, identity_id: int, user_id: int) -> None:
    """Record a "someone you pledged to joined" notice for each giver (other than `user_id`)
    with pledges for `identity_id`; call it in the transaction that claims the identity. A
    "pledges are waiting" notice not yet sent to that identity is dropped."""
    last_closed = conn.execute(select(ledger_clock.c.last_closed_month)).scalar()
    unsettled = flattrs.c.month > last_closed if last_closed else flattrs.c.month.is_not(None)
    givers = union(
        select(pledges.c.giver_id.label("giver_id"))
        .where(pledges.c.identity_id == identity_id, pledges.c.state == "waiting"),
        select(flattrs.c.giver_id)
        .join(things, things.c.id == flattrs.c.thing_id)
        .where(things.c.owner_identity_id == identity_id, flattrs.c.retracted_at.is_(None),
               unsettled),
    ).subquery("givers")
    told = (select(givers.c.giver_id)
            .join(logins, logins.c.user_id == givers.c.giver_id)
            .outerjoin(notification_settings,
                       notification_settings.c.user_id == givers.c.giver_id)
            .where(givers.c.giver_id != user_id, verified_email.is_not(None),
                   or_(notification_settings.c.pledgee_joined.is_(None),
                       notification_settings.c.pledgee_joined.is_(True)))
            .order_by(givers.c.giver_id))
    now = utcnow()
    for giver_id in conn.execute(told).scalars():
        _record(conn, "pledgee_joined", "email", identity_id, giver_id,
                f"joined:{identity_id}:{giver_id}", now)
    conn.execute(update(notification_outbox)
                 .where(notification_outbox.c.identity_id == identity_id,
                        notification_outbox.c.kind == "pledges_waiting",
                        notification_outbox.c.state == "pending")
                 .values(state="skipped", next_attempt_at=None, last_error="claimed"))


def record_for_ingest(conn: Connection, config: Settings,
                      batch: Sequence[NormalisedEvent], result: IngestResult) -> list[int]:
    """Record a "pledges are waiting" notice for each unclaimed identity that `ingest(conn,
    batch)` recorded pledges for, on the opted-in platforms; call it in the ingest's
    transaction. Returns the new notices' ids, to queue after the commit. Costs nothing while
    no platform is opted in."""
    platforms = set(config.notifications.platforms)
    owners = sorted({(event.platform, event.owner_id) for event in batch
                     if event.platform in platforms
                     and result.outcomes.get(event.key) == "pledge"})
    if not owners:
        return []
    discord = bool(config.connectors["discord"].bot_token)
    i = identities.c
    rows = conn.execute(
        select(i.id, i.platform, verified_email.label("email"))
        .outerjoin(logins, logins.c.user_id == i.linked_user_id)
        .outerjoin(notification_optouts, notification_optouts.c.identity_id == i.id)
        .where(tuple_(i.platform, i.platform_user_id).in_(owners), i.claimed_by.is_(None),
               notification_optouts.c.identity_id.is_(None))
        .order_by(i.id)).all()
    now = utcnow()
    ids = []
    for row in rows:
        channel = creator_channel(row.platform, row.email, discord)
        if channel is not None:
            notice = _record(conn, "pledges_waiting", channel, row.id, None,
                             f"waiting:{row.id}", now)
            if notice is not None:
                ids.append(notice)
    return ids


def creator_channel(platform: str, email: str | None, discord: bool) -> str | None:
    """How the creator of an unclaimed identity can be reached: by e-mail when a member linked
    it (to give with it) without claiming it, else by a Discord DM for a Discord identity when
    the bot is configured; else not at all (None)."""
    if email:
        return "email"
    if platform == "discord" and discord:
        return "discord"
    return None


def _record(conn: Connection, kind: str, channel: str, identity_id: int, user_id: int | None,
            key: str, now: datetime) -> int | None:
    return conn.execute(
        dialect_insert(conn, notification_outbox)
        .values(kind=kind, channel=channel, identity_id=identity_id, user_id=user_id,
                dedupe_key=key, state="pending", next_attempt_at=now, created_at=now)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(notification_outbox.c.id)).scalar()
