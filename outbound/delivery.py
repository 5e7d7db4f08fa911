"""Sending outbound webhook deliveries: one RQ job per delivery on the `outbound` queue
(`workers.webhooks_out`), retried with backoff, and a sweep (every `outbound.sweep_seconds`)
that queues again any delivery that is due but was not sent, e.g. because Redis was down, with
the lifecycle every outbox shares (`pipeline.outbox`: lease, send, record; at least once).

Headers: `webhook-id` (the same for every attempt and for a resend: receivers deduplicate on
it), `webhook-timestamp` (unix seconds of the attempt) and `webhook-signature` (`v1,<base64
HMAC-SHA256 of "id.timestamp.body">` with the endpoint's `whsec_` secret). Secrets and
signatures are never logged.

Retries: attempts go out immediately, then 5 s, 5 min, 30 min, 2 h, 5 h and 10 h after the
previous one failed; after the seventh failure the delivery is `failed`. Any 2xx answer is a
success; redirects are not followed. Every attempt is kept (`outbound_attempts`); an endpoint
that answers 410 Gone or keeps failing is disabled (`outbound.endpoints`). `resend` sends a
delivery again from the start of the schedule.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import structlog
from redis import Redis
from sqlalchemy import Connection, Engine, Row, select, update
from standardwebhooks.webhooks import Webhook

from base.config import Settings
from base.metrics import record_outbound
from base.public_net import UnsafeTarget, guarded_session
from base.tables.outbound import outbound_attempts, outbound_deliveries, outbound_endpoints
from ledger.sql import utcnow
from outbound.endpoints import NotFound, OutboundError, disable, guard
from pipeline.outbox import Attempt, Leased, Outbox, Sent

RETRY_SCHEDULE = (timedelta(0), timedelta(seconds=5), timedelta(minutes=5),
                  timedelta(minutes=30), timedelta(hours=2), timedelta(hours=5),
                  timedelta(hours=10))
DELIVERIES = Outbox(outbound_deliveries, "outbound", "workers.webhooks_out.deliver",
                    "send outbound webhook delivery", RETRY_SCHEDULE, done="delivered",
                    name="outbound", observe=record_outbound)

Post = Callable[..., requests.Response]

log = structlog.get_logger(__name__)


def enqueue(redis: Redis, delivery_ids: Iterable[int]) -> int:
    """Put deliveries on the `outbound` queue (after the commit that recorded them). A Redis
    failure is logged, not raised: the sweep queues them later. Returns how many."""
    return DELIVERIES.enqueue(redis, delivery_ids)


def stale(config: Settings, now: datetime) -> datetime:
    """The sweep queues the deliveries due since this time or before: due for longer than
    `outbound.sweep_seconds` (their job was lost, or never queued)."""
    return now - timedelta(seconds=config.outbound.sweep_seconds)


def attempt(engine: Engine, config: Settings, delivery_id: int, *,
            now: datetime | None = None, post: Post | None = None) -> Attempt:
    """Send delivery `delivery_id` once if it is due at `now` (naive UTC; the clock of the
    retry schedule) and record the outcome. The signature's timestamp is the real time of
    sending, which receivers check against their own clock.

    The row is leased past the HTTP timeout, so no transaction is held open while the endpoint
    answers. `post` defaults to one that reaches public addresses only (unless
    `outbound.allow_private`), checked again at each attempt."""
    now = now or utcnow()
    timeout = config.outbound.timeout_seconds

    def send(leased: Leased[Any]) -> Sent:
        if post is not None:
            return _send(leased.item, post, timeout, now)
        with guarded_session(guard(config)) as session:
            return _send(leased.item, session.post, timeout, now)

    return DELIVERIES.attempt(engine, now, lambda conn: _lease(conn, delivery_id, now, timeout),
                              send, lambda conn, leased, sent: _settle(conn, config, leased,
                                                                       now, sent))


def _lease(conn: Connection, delivery_id: int, now: datetime,
           timeout: float) -> Leased[Any] | Attempt:
    d, e = outbound_deliveries.c, outbound_endpoints.c
    row = conn.execute(
        select(d.id, d.state, d.next_attempt_at, d.attempts, d.webhook_id, d.payload,
               d.endpoint_id, e.url, e.secret, e.enabled, e.disabled_reason)
        .join(outbound_endpoints, e.id == d.endpoint_id)
        .where(d.id == delivery_id).with_for_update(of=outbound_deliveries)).one_or_none()
    if row is None:
        return Attempt("missing")
    if not DELIVERIES.due(row, now):
        return Attempt("not_due")
    if not row.enabled:
        DELIVERIES.finish(conn, delivery_id, "failed",
                          f"endpoint disabled: {row.disabled_reason}")
        return Attempt("failed")
    DELIVERIES.lease(conn, delivery_id, now + timedelta(seconds=timeout + 60))
    return Leased(row.id, row.attempts, row, {"delivery": row.id, "endpoint": row.endpoint_id})


def _send(row: Row[*tuple[Any, ...]], post: Post, timeout: float, now: datetime) -> Sent:
    """POST the signed delivery."""
    sent_at = datetime.now(UTC)
    headers = {"content-type": "application/json", "user-agent": "flattr-hub-webhooks",
               "webhook-id": row.webhook_id,
               "webhook-timestamp": str(int(sent_at.timestamp())),
               "webhook-signature": Webhook(row.secret).sign(row.webhook_id, sent_at,
                                                             row.payload)}
    started = time.monotonic()
    status: int | None = None
    try:
        # stream=True: the answer's body is never read, whatever its size
        response = post(row.url, data=row.payload.encode(), headers=headers, timeout=timeout,
                        allow_redirects=False, stream=True)
        status = response.status_code
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        response.close()
    except UnsafeTarget:
        error = "refused: the host has no public address"
    except requests.Timeout:
        error = "the endpoint did not answer in time"
    except (requests.RequestException, ValueError):  # ValueError: a URL it can't use
        error = "the endpoint could not be reached"
    return Sent(error, status=status, elapsed_ms=int((time.monotonic() - started) * 1000),
                values={"last_attempt_at": now, "last_status": status})


def _settle(conn: Connection, config: Settings, leased: Leased[Any],
            now: datetime, sent: Sent) -> Attempt | None:
    """Keep the attempt, and the endpoint's failing streak: a success ends it; 410 Gone, or
    failing for `outbound.disable_after_days`, disables the endpoint (the delivery fails)."""
    endpoint_id = leased.item.endpoint_id
    conn.execute(outbound_attempts.insert().values(
        delivery_id=leased.id, attempted_at=now, status=sent.status, error=sent.error,
        duration_ms=sent.elapsed_ms))
    endpoint = outbound_endpoints.c
    if sent.error is None:
        conn.execute(update(outbound_endpoints).where(endpoint.id == endpoint_id)
                     .values(failing_since=None))
        return None
    failing_since = conn.execute(
        select(endpoint.failing_since).where(endpoint.id == endpoint_id)).scalar() or now
    conn.execute(update(outbound_endpoints).where(endpoint.id == endpoint_id)
                 .values(failing_since=failing_since))
    limit = timedelta(days=config.outbound.disable_after_days)
    if sent.status == 410:
        reason = "the endpoint answered 410 Gone"
    elif now - failing_since >= limit:
        reason = f"every attempt failed since {failing_since.isoformat(timespec='seconds')}Z"
    else:
        return None
    disable(conn, endpoint_id, reason)
    log.warning("outbound_endpoint_disabled", reason=reason, delivery=leased.id,
                endpoint=endpoint_id, attempt=leased.attempts + 1, status=sent.status)
    return Attempt("failed", sent.status)


def resend(engine: Engine, delivery_id: int, redis: Redis | None = None, *,
           now: datetime | None = None, owner: int | None = None,
           endpoint_id: int | None = None) -> bool:
    """Send a delivery again from the start of the retry schedule, with the same `webhook-id`.
    Refused while its endpoint is disabled; with `owner` (`endpoint_id`), refused as missing
    unless that user owns its endpoint (it is that endpoint's). With `redis`, its job is
    queued at once; returns whether it was (else `dispatch_due` sends it)."""
    now = now or utcnow()
    with engine.begin() as conn:
        row = conn.execute(
            select(outbound_deliveries.c.state, outbound_endpoints.c.enabled)
            .join(outbound_endpoints,
                  outbound_endpoints.c.id == outbound_deliveries.c.endpoint_id)
            .where(outbound_deliveries.c.id == delivery_id,
                   *(() if owner is None else (outbound_endpoints.c.user_id == owner,)),
                   *(() if endpoint_id is None else
                     (outbound_deliveries.c.endpoint_id == endpoint_id,)))).one_or_none()
        if row is None:
            raise NotFound(f"no delivery {delivery_id}")
        if not row.enabled:
            raise OutboundError(f"the endpoint of delivery {delivery_id} is disabled; "
                                "enable it first")
        conn.execute(update(outbound_deliveries)
                     .where(outbound_deliveries.c.id == delivery_id)
                     .values(state="pending", attempts=0, next_attempt_at=now,
                             delivered_at=None))
    return redis is not None and enqueue(redis, [delivery_id]) == 1
