"""Sending the outbox: one RQ job per notice on the `notifications` queue, retried with
backoff, and a sweeper for notices whose job was lost.

A notice is leased (its next attempt pushed past the time sending can take) in a short
transaction, sent with no transaction open, then marked `sent` (or scheduled again, or
`failed`) in another. A notice marked sent is never sent again; a worker that dies between
sending and marking leaves the notice pending, and the sweeper sends it again once the lease
has run out: delivery is at least once. The repeat carries the same Discord `nonce` (Discord
drops a repeat within a few minutes) or e-mail `Message-ID`.

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
from sqlalchemy import Connection, Engine, func, select, update

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
from pipeline.context import current
from pipeline.queues import enqueue_ids

RETRY_SCHEDULE = (timedelta(0), timedelta(seconds=30), timedelta(minutes=2),
                  timedelta(minutes=10), timedelta(hours=1), timedelta(hours=6))
DELIVER_TIMEOUT = 120  # RQ's limit for one job; the network timeouts are far shorter
JOB = ("notifications", "notifications.delivery.deliver")  # queue, job function
DESCRIBE = "send notice"
DISPATCH_LIMIT = 1000
HOUR = timedelta(hours=1)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Attempt:
    """What one call of `attempt` did: the notice's state afterwards (or `not_due`,
    `missing`), and when it is due again if it is still pending."""

    state: str
    retry_at: datetime | None = None


@dataclass(frozen=True)
class _Notice:
    id: int
    kind: str
    channel: str
    attempts: int
    identity_id: int
    platform: str
    platform_user_id: str
    name: str
    email: str


def enqueue(redis: Redis, notice_ids: Iterable[int]) -> int:
    """Queue notices (after the commit that recorded them). A Redis failure is logged, not
    raised: `dispatch_due` queues them later. Returns how many were queued."""
    return enqueue_ids(redis, *JOB, notice_ids, timeout=DELIVER_TIMEOUT, describe=DESCRIBE)



def deliver(notice_id: int) -> str:
    """The RQ job: one attempt at a notice; when it is due again later (a retry, the hourly
    cap), its next job is queued for then. Returns the notice's state afterwards."""
    context = current()
    outcome = attempt(context.engine, context.config, notice_id)
    if outcome.retry_at is not None:  # Redis down: dispatch_due queues it once it is due
        enqueue_ids(context.redis, *JOB, [notice_id], timeout=DELIVER_TIMEOUT, describe=DESCRIBE,
                    delay=outcome.retry_at - utcnow())
    return outcome.state


def dispatch_due(now: datetime | None = None) -> int:
    """The scheduler's sweep: queue the notices due for longer than
    `notifications.sweep_seconds` (their job was lost, or never queued, as for the notices
    recorded when an identity is claimed). Returns how many."""
    context = current()
    now = now or utcnow()
    stale = now - timedelta(seconds=context.config.notifications.sweep_seconds)
    o = notification_outbox.c
    with context.engine.connect() as conn:
        ids = list(conn.execute(
            select(o.id).where(o.state == "pending", o.next_attempt_at <= stale)
            .order_by(o.next_attempt_at).limit(DISPATCH_LIMIT)).scalars())
    count = enqueue(context.redis, ids)
    if count:
        log.info("notifications_dispatched", notices=count)
    return count


def attempt(engine: Engine, config: Settings, notice_id: int, *,
            now: datetime | None = None) -> Attempt:
    """Send notice `notice_id` once if it is due at `now` (naive UTC; the clock of the retry
    schedule and of the hourly cap) and record the outcome."""
    now = now or utcnow()
    with engine.begin() as conn:
        leased = _lease(conn, config, notice_id, now)
    if isinstance(leased, Attempt):
        return leased
    try:
        _send(config, leased)
        error, permanent = None, False
    except SendError as exc:
        error, permanent = str(exc), exc.permanent
    with engine.begin() as conn:
        return _record(conn, leased, now, error, permanent)


def _lease(conn: Connection, config: Settings, notice_id: int,
           now: datetime) -> _Notice | Attempt:
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
    if row.state != "pending" or row.next_attempt_at > now:
        return Attempt("not_due")
    reason = _skip_reason(config, row)
    if reason is not None:
        conn.execute(update(notification_outbox).where(o.id == notice_id)
                     .values(state="skipped", next_attempt_at=None, last_error=reason))
        log.info("notice_skipped", notice=notice_id, kind=row.kind, reason=reason)
        return Attempt("skipped")
    if row.kind == "pledges_waiting":
        wait_until = _over_hourly_cap(conn, config, now)
        if wait_until is not None:
            conn.execute(update(notification_outbox).where(o.id == notice_id)
                         .values(next_attempt_at=wait_until))
            return Attempt("pending", wait_until)
    lease = 2 * config.notifications.timeout_seconds + 60
    conn.execute(update(notification_outbox).where(o.id == notice_id)
                 .values(next_attempt_at=now + timedelta(seconds=lease)))
    return _Notice(row.id, row.kind, row.channel, row.attempts, row.identity_id, row.platform,
                   row.platform_user_id, row.username or row.platform_user_id, row.email or "")


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


def _send(config: Settings, notice: _Notice) -> None:
    if notice.kind == "pledges_waiting":
        message = messages.pledges_waiting(config, notice.identity_id, notice.platform,
                                           notice.platform_user_id, notice.name)
    else:
        message = messages.pledgee_joined(config, notice.platform, notice.name)
    if notice.channel == "email":
        host = urlsplit(base_url(config)).hostname or "localhost"
        send_email(config, notice.email, message.subject, message.text,
                   f"<notice-{notice.id}@{host}>")
    else:
        send_discord_dm(config, notice.platform_user_id, message.text, f"flattr-{notice.id}")


def _record(conn: Connection, notice: _Notice, now: datetime, error: str | None,
            permanent: bool) -> Attempt:
    attempts = notice.attempts + 1
    o = notification_outbox.c
    fields = {"notice": notice.id, "kind": notice.kind, "channel": notice.channel,
              "attempt": attempts}
    if error is None:
        conn.execute(update(notification_outbox).where(o.id == notice.id)
                     .values(state="sent", sent_at=now, next_attempt_at=None,
                             attempts=attempts, last_error=None))
        log.info("notice_sent", **fields)
        return Attempt("sent")
    if permanent or attempts >= len(RETRY_SCHEDULE):
        conn.execute(update(notification_outbox).where(o.id == notice.id)
                     .values(state="failed", next_attempt_at=None, attempts=attempts,
                             last_error=error[:255]))
        log.warning("notice_failed", error=error, **fields)
        return Attempt("failed")
    retry_at = now + RETRY_SCHEDULE[attempts]
    conn.execute(update(notification_outbox).where(o.id == notice.id)
                 .values(next_attempt_at=retry_at, attempts=attempts, last_error=error[:255]))
    log.info("notice_retry", error=error, retry_at=retry_at.isoformat(), **fields)
    return Attempt("pending", retry_at)
