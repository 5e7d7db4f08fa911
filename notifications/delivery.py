"""Sending the notification outbox: one RQ job per notice on the `notifications` queue
(`workers.notices`), retried with backoff, and a sweep for notices whose job was lost, with the
lifecycle every outbox shares (`pipeline.outbox`: lease, send, record; at least once). A
repeat carries the same Discord `nonce` (Discord drops a repeat within a few minutes) or
e-mail `Message-ID`.

Before sending, a notice is skipped when there is no longer anybody to tell: the identity was
claimed or its creator opted out, its platform is no longer opted in, the giver turned these
e-mails off, or no address or channel is configured. Creator notices ("pledges are waiting")
are sent at most `notifications.max_per_hour` an hour (0: no limit); the rest wait their turn.
The cap is checked before each send, so workers sending at the same instant can exceed it by
one each.

Retries: at once, then 30 s, 2 min, 10 min, 1 h and 6 h after the previous failure; then the
notice is `failed`. A refusal that will not change (an SMTP 5xx, Discord 400/403/404) fails it
at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from redis import Redis
from sqlalchemy import Connection, Engine, func, select

from base.config import Settings
from base.links import base_url
from base.tables.members import logins, verified_email
from base.tables.notifications import (
    notification_optouts,
    notification_outbox,
    notification_settings,
)
from ledger.schema import identities
from ledger.sql import utcnow
from notifications import messages
from notifications.channels import SendError, send_discord_dm, send_email
from pipeline.outbox import Attempt, Leased, Outbox, Sent

RETRY_SCHEDULE = (timedelta(0), timedelta(seconds=30), timedelta(minutes=2),
                  timedelta(minutes=10), timedelta(hours=1), timedelta(hours=6))
NOTICES = Outbox(notification_outbox, "notifications", "workers.notices.deliver", "send notice",
                 RETRY_SCHEDULE, done="sent", name="notice")
HOUR = timedelta(hours=1)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Notice:
    kind: str
    channel: str
    identity_id: int
    platform: str
    platform_user_id: str
    name: str
    email: str


def enqueue(redis: Redis, notice_ids: Iterable[int]) -> int:
    """Queue notices (after the commit that recorded them). A Redis failure is logged, not
    raised: the sweep queues them later. Returns how many were queued."""
    return NOTICES.enqueue(redis, notice_ids)


def stale(config: Settings, now: datetime) -> datetime:
    """The sweep queues the notices due since this time or before: due for longer than
    `notifications.sweep_seconds` (their job was lost, or never queued, as for the notices
    recorded when an identity is claimed)."""
    return now - timedelta(seconds=config.notifications.sweep_seconds)


def attempt(engine: Engine, config: Settings, notice_id: int, *,
            now: datetime | None = None) -> Attempt:
    """Send notice `notice_id` once if it is due at `now` (naive UTC; the clock of the retry
    schedule and of the hourly cap) and record the outcome."""
    now = now or utcnow()
    return NOTICES.attempt(engine, now, lambda conn: lease(conn, config, notice_id, now),
                           lambda leased: _send(config, leased))


def lease(conn: Connection, config: Settings, notice_id: int,
          now: datetime) -> Leased[Notice] | Attempt:
    """Lease notice `notice_id` for one attempt, or say why it is not sent now (skipped and
    why, over the hourly cap)."""
    o, i = notification_outbox.c, identities.c
    recipient = func.coalesce(o.user_id, i.linked_user_id)
    row = conn.execute(
        select(o.id, o.kind, o.channel, o.state, o.attempts, o.next_attempt_at, o.identity_id,
               i.platform, i.platform_user_id, i.username, i.claimed_by,
               verified_email.label("email"),
               notification_settings.c.pledgee_joined,
               notification_optouts.c.identity_id.label("opted_out"))
        .join(identities, i.id == o.identity_id)
        .outerjoin(logins, logins.c.user_id == recipient)
        .outerjoin(notification_settings, notification_settings.c.user_id == o.user_id)
        .outerjoin(notification_optouts, notification_optouts.c.identity_id == o.identity_id)
        .where(o.id == notice_id).with_for_update(of=notification_outbox)).one_or_none()
    if row is None:
        return Attempt("missing")
    if not NOTICES.due(row, now):
        return Attempt("not_due")
    reason = _skip_reason(config, row)
    if reason is not None:
        NOTICES.finish(conn, notice_id, "skipped", reason)
        log.info("notice_skipped", notice=notice_id, kind=row.kind, reason=reason)
        return Attempt("skipped")
    if row.kind == "pledges_waiting":
        wait_until = _over_hourly_cap(conn, config, now)
        if wait_until is not None:
            NOTICES.lease(conn, notice_id, wait_until)
            return Attempt("pending", retry_at=wait_until)
    NOTICES.lease(conn, notice_id,
                  now + timedelta(seconds=2 * config.notifications.timeout_seconds
                                  + 60))
    return Leased(row.id, row.attempts,
                  Notice(row.kind, row.channel, row.identity_id, row.platform,
                         row.platform_user_id, row.username or row.platform_user_id,
                         row.email or ""),
                  {"notice": row.id, "kind": row.kind, "channel": row.channel})


def _skip_reason(config: Settings, row: Any) -> str | None:
    settings = config.notifications
    if row.kind == "pledges_waiting":
        if row.claimed_by is not None:
            return "claimed"
        if row.opted_out is not None:
            return "opted out"
        if row.platform not in settings.platforms:
            return "platform not opted in"
    elif row.pledgee_joined is False:
        return "turned off"
    if row.channel == "email":
        if not row.email:
            return "no e-mail address"
        if not settings.smtp_host:
            return "e-mail is not configured"
    elif not config.connectors["discord"].bot_token:
        return "the Discord bot is not configured"
    return None


def _over_hourly_cap(conn: Connection, config: Settings,
                     now: datetime) -> datetime | None:
    """When the next creator notice may go out, if the last hour's cap is reached."""
    cap = config.notifications.max_per_hour
    if cap <= 0:
        return None
    o = notification_outbox.c
    sent = list(conn.execute(
        select(o.sent_at).where(o.kind == "pledges_waiting", o.sent_at > now - HOUR)
        .order_by(o.sent_at.desc()).limit(cap)).scalars())
    return sent[-1] + HOUR if len(sent) >= cap else None


def _send(config: Settings, leased: Leased[Notice]) -> Sent:
    notice = leased.item
    if notice.kind == "pledges_waiting":
        message = messages.pledges_waiting(config, notice.identity_id, notice.platform,
                                           notice.platform_user_id, notice.name)
    else:
        message = messages.pledgee_joined(config, notice.platform, notice.name)
    try:
        if notice.channel == "email":
            host = urlsplit(base_url(config)).hostname or "localhost"
            send_email(config, notice.email, message.subject, message.text,
                       f"<notice-{leased.id}@{host}>")
        else:
            send_discord_dm(config, notice.platform_user_id, message.text,
                            f"flattr-{leased.id}")
    except SendError as exc:
        return Sent(str(exc), exc.permanent)
    return Sent()
