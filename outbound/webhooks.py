"""Outbound webhooks: creators and partners are told what happens, signed by Standard Webhooks.

Event types:
- `flattr.received`: someone flattred a thing whose owner identity the endpoint's user claimed.
- `pledge.created`: a flattr of a thing whose owner identity nobody has claimed yet, with the
  URL where its owner can claim it (Flattr's partner `pendingclickcreate`). It goes to partner
  endpoints, which receive the events that have no owner on the hub (and only those; a user's
  own events go to the user's other endpoints).
- `settlement.completed`: a month was settled; what the endpoint's user received in it.

An event becomes one delivery per subscribed, enabled endpoint, written by `emit` in the
caller's transaction, so an event recorded is an event delivered (or failed visibly) and never
lost between the database and the queue. After the commit, `enqueue` puts the deliveries on
the `outbound` queue; `dispatch_due` (run every `outbound.sweep_seconds` by the scheduler)
queues again any delivery that is due but was not sent, e.g. because Redis was down.

The body sent is `{"type", "timestamp", "data"}` as JSON, stored with the delivery so that every
attempt signs the same bytes. Headers: `webhook-id` (the same for every attempt and for a
resend: receivers deduplicate on it), `webhook-timestamp` (unix seconds of the attempt) and
`webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the endpoint's
`whsec_` secret). Secrets and signatures are never logged.

Endpoints are the users' own (members manage theirs on /settings/webhooks, operators anyone's
with `flattr-hub webhooks`; both through the functions here, which take `owner` to find only
that user's). Their hosts must resolve to public addresses, checked when registered and again
at each attempt, connecting to the checked address (`base.public_net`), unless
`outbound.allow_private`.

Retries: attempts go out immediately, then 5 s, 5 min, 30 min, 2 h, 5 h and 10 h after the
previous one failed; after the seventh failure the delivery is `failed`. Any 2xx answer is a
success; redirects are not followed. An endpoint that answers 410 Gone, or whose attempts have
failed without a success in between for `outbound.disable_after_days`, is disabled, and its
pending deliveries fail. `resend` sends a delivery again from the start of the schedule.

Wiring (not done here): call `emit_for_ingest(conn, config, events, result)` right after
`ingest` in `workers.jobs.process_batch`, and `emit_settlement(conn, config, month)` (in a
transaction) after each month settled in `workers.jobs.settle_due`, each followed by `enqueue`
after the commit; register `dispatch_due` in `workers.schedule.make_scheduler` on the
`outbound` queue with `interval=config.outbound.sweep_seconds`.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from redis import Redis
from sqlalchemy import Connection, Engine, Row, and_, func, or_, select, update
from standardwebhooks.webhooks import Webhook

from base.config import Settings
from base.links import claim_url
from base.metrics import record_outbound
from base.public_net import Guard, UnsafeTarget, guarded_session
from base.tables.outbound import outbound_attempts, outbound_deliveries, outbound_endpoints
from ledger.events import NormalisedEvent
from ledger.ingest import IngestResult
from ledger.schema import flattrs, identities, shares, things, users
from ledger.sql import dialect_insert, utcnow
from pipeline.context import current
from pipeline.queues import enqueue_ids

EVENT_TYPES = ("flattr.received", "pledge.created", "settlement.completed")
USER_EVENT_TYPES = ("flattr.received", "settlement.completed")  # the rest: partners only
RETRY_SCHEDULE = (timedelta(0), timedelta(seconds=5), timedelta(minutes=5),
                  timedelta(minutes=30), timedelta(hours=2), timedelta(hours=5),
                  timedelta(hours=10))
DELIVER_TIMEOUT = 120  # RQ's limit for one job; the HTTP timeout is far shorter
JOB = ("outbound", "outbound.webhooks.deliver")  # queue, job function
DESCRIBE = "send outbound webhook delivery"
DISPATCH_LIMIT = 1000

log = structlog.get_logger(__name__)

Post = Callable[..., requests.Response]


class OutboundError(Exception):
    """A request about endpoints or deliveries that can not be done; nothing was changed."""


class NotFound(OutboundError):
    """No such endpoint or delivery (or not the asking user's)."""


@dataclass(frozen=True)
class Endpoint:
    id: int
    user: str
    url: str
    event_types: tuple[str, ...]
    partner: bool
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Attempt:
    """What one call of `attempt` did: the delivery's state afterwards (or `not_due`,
    `missing`), the HTTP status if an answer came, and when the next attempt is due."""

    state: str
    status: int | None = None
    retry_at: datetime | None = None


# --- Endpoints --------------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def parse_event_types(text: str) -> tuple[str, ...]:
    """`a,b` as a tuple of known event types, in EVENT_TYPES order."""
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise OutboundError(f"unknown event type {', '.join(unknown)} "
                            f"(known: {', '.join(EVENT_TYPES)})")
    if not wanted:
        raise OutboundError("name at least one event type")
    return tuple(kind for kind in EVENT_TYPES if kind in wanted)


def add_endpoint(conn: Connection, config: Settings, user_id: int, url: str,
                 event_types: Sequence[str], *, partner: bool = False) -> tuple[int, str]:
    """Register `url` for `user_id`: (endpoint id, its new secret). Its host must resolve to
    public addresses only, unless `outbound.allow_private`; it is resolved before any SQL,
    so no transaction waits for DNS. `pledge.created` is for partner endpoints only (a
    user's own endpoint never receives one)."""
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # e.g. an unclosed [IPv6 address or a port out of range
        usable = False
    if not usable:
        raise OutboundError(f"endpoint URL must be http:// or https:// with a host: {url!r}")
    kinds = parse_event_types(",".join(event_types))
    if not partner and not set(kinds) <= set(USER_EVENT_TYPES):
        raise OutboundError("pledge.created is sent to partner endpoints only")
    try:
        _guard(config).check(str(parts.hostname),
                             parts.port or (443 if parts.scheme == "https" else 80))
    except UnsafeTarget as exc:
        raise OutboundError(str(exc)) from None
    secret = new_secret()
    endpoint_id = conn.execute(outbound_endpoints.insert().values(
        user_id=user_id, url=url, secret=secret, event_types=",".join(kinds), partner=partner,
        created_at=utcnow()).returning(outbound_endpoints.c.id)).scalar_one()
    return int(endpoint_id), secret


def list_endpoints(conn: Connection, user_id: int | None = None) -> list[Endpoint]:
    """The endpoints of `user_id` (all when None), oldest first; secrets are not included."""
    return _endpoints(conn, None if user_id is None else outbound_endpoints.c.user_id == user_id)


def _endpoints(conn: Connection, where: Any) -> list[Endpoint]:
    query = (select(outbound_endpoints, users.c.name)
             .join(users, users.c.id == outbound_endpoints.c.user_id)
             .order_by(outbound_endpoints.c.id))
    if where is not None:
        query = query.where(where)
    return [Endpoint(row.id, row.name, row.url, tuple(row.event_types.split(",")), row.partner,
                     row.enabled, row.disabled_reason, row.failing_since, row.created_at)
            for row in conn.execute(query)]


def _owned(endpoint_id: int, owner: int | None) -> Any:
    """The condition selecting endpoint `endpoint_id`, only if `owner` (when given) owns it."""
    e = outbound_endpoints.c
    return and_(e.id == endpoint_id, *(() if owner is None else (e.user_id == owner,)))


def endpoint_log(conn: Connection, endpoint_id: int, owner: int | None = None,
                 limit: int = 50) -> tuple[Endpoint, list[Row[Any]]]:
    """An endpoint and its newest deliveries (see `list_deliveries`); with `owner`, only that
    user's endpoint (another's is as missing as one that does not exist)."""
    found = _endpoints(conn, _owned(endpoint_id, owner))
    if not found:
        raise NotFound(f"no endpoint {endpoint_id}")
    return found[0], list_deliveries(conn, endpoint_id, limit)


def enable_endpoint(conn: Connection, endpoint_id: int, owner: int | None = None) -> None:
    """Enable a disabled endpoint again (its failed deliveries can then be resent)."""
    done = conn.execute(update(outbound_endpoints).where(_owned(endpoint_id, owner))
                        .values(enabled=True, disabled_reason=None, failing_since=None)).rowcount
    if not done:
        raise NotFound(f"no endpoint {endpoint_id}")


def disable_endpoint(conn: Connection, endpoint_id: int, reason: str,
                     owner: int | None = None) -> None:
    """Disable an endpoint by hand; its pending deliveries fail."""
    if conn.execute(select(outbound_endpoints.c.id)
                    .where(_owned(endpoint_id, owner))).scalar() is None:
        raise NotFound(f"no endpoint {endpoint_id}")
    _disable(conn, endpoint_id, reason)


def delete_endpoint(conn: Connection, endpoint_id: int, owner: int | None = None) -> None:
    """Delete an endpoint with its deliveries and their attempts (a queued job of one of them
    then finds nothing to send)."""
    if conn.execute(select(outbound_endpoints.c.id)
                    .where(_owned(endpoint_id, owner))).scalar() is None:
        raise NotFound(f"no endpoint {endpoint_id}")
    deliveries = select(outbound_deliveries.c.id).where(
        outbound_deliveries.c.endpoint_id == endpoint_id).scalar_subquery()
    conn.execute(outbound_attempts.delete().where(outbound_attempts.c.delivery_id.in_(deliveries)))
    conn.execute(outbound_deliveries.delete()
                 .where(outbound_deliveries.c.endpoint_id == endpoint_id))
    conn.execute(outbound_endpoints.delete().where(outbound_endpoints.c.id == endpoint_id))


def list_deliveries(conn: Connection, endpoint_id: int | None = None,
                    limit: int = 50) -> list[Row[Any]]:
    """The newest deliveries (of one endpoint), newest first, without their payloads."""
    d = outbound_deliveries.c
    query = (select(d.id, d.endpoint_id, d.event_type, d.webhook_id, d.state, d.attempts,
                    d.next_attempt_at, d.last_status, d.last_error, d.created_at,
                    d.delivered_at)
             .order_by(d.id.desc()).limit(limit))
    if endpoint_id is not None:
        query = query.where(d.endpoint_id == endpoint_id)
    return list(conn.execute(query))


# --- Emitting events --------------------------------------------------------------------


def emit(conn: Connection, event_type: str, payload: Mapping[str, Any],
         owner_user_id: int | None, *, key: str | None = None,
         now: datetime | None = None) -> list[int]:
    """Record deliveries of one event, in the caller's transaction: to the enabled endpoints of
    `owner_user_id` subscribed to `event_type`, or, for an event without an owner, to the
    subscribed partner endpoints. An event emitted again with the same `key` is delivered once
    per endpoint. Returns the new deliveries' ids, for `enqueue` after the commit."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type}")
    targets = _subscribers(conn, [owner_user_id]).get(owner_user_id, [])
    return _record_deliveries(conn, [endpoint_id for endpoint_id, kinds in targets
                                     if event_type in kinds],
                              event_type, payload, key, now or utcnow())


def _subscribers(conn: Connection, owners: Iterable[int | None]
                ) -> dict[int | None, list[tuple[int, tuple[str, ...]]]]:
    """The enabled endpoints, with their event types, of each owner: a user's own endpoints,
    and for None (events without an owner) the partner endpoints."""
    owners = set(owners)
    e = outbound_endpoints.c
    who = []
    user_ids = [owner for owner in owners if owner is not None]
    if user_ids:
        who.append(and_(e.partner.is_(False), e.user_id.in_(user_ids)))
    if None in owners:
        who.append(e.partner.is_(True))
    found: dict[int | None, list[tuple[int, tuple[str, ...]]]] = {}
    if not who:
        return found
    for row in conn.execute(select(e.id, e.user_id, e.partner, e.event_types)
                            .where(or_(*who), e.enabled.is_(True)).order_by(e.id)):
        owner = None if row.partner else row.user_id
        found.setdefault(owner, []).append((row.id, tuple(row.event_types.split(","))))
    return found


def _record_deliveries(conn: Connection, endpoint_ids: Sequence[int], event_type: str,
                       payload: Mapping[str, Any], key: str | None,
                       now: datetime) -> list[int]:
    if not endpoint_ids:
        return []
    body = json.dumps({"type": event_type, "timestamp": now.isoformat(timespec="seconds") + "Z",
                       "data": payload}, separators=(",", ":"), sort_keys=True)
    event_key = key or f"once:{uuid.uuid4().hex}"
    ids = []
    for endpoint_id in endpoint_ids:
        inserted = conn.execute(
            dialect_insert(conn, outbound_deliveries)
            .values(endpoint_id=endpoint_id, event_type=event_type, event_key=event_key,
                    webhook_id=f"msg_{uuid.uuid4().hex}", payload=body, state="pending",
                    next_attempt_at=now, created_at=now)
            .on_conflict_do_nothing(index_elements=["endpoint_id", "event_key"])
            .returning(outbound_deliveries.c.id)).scalar()
        if inserted is not None:
            ids.append(int(inserted))
    return ids


def emit_for_ingest(conn: Connection, config: Settings,
                    batch: Sequence[NormalisedEvent], result: IngestResult) -> list[int]:
    """Emit `flattr.received` for the flattrs that `ingest(conn, batch)` recorded to claimed
    identities, and `pledge.created` for those waiting for an unclaimed one; call it in the
    ingest's transaction. While no endpoint subscribes to either, it costs one query per batch.
    The flattrs are found through their things `(platform, content_id)` (an index) per
    platform. Returns the new deliveries' ids."""
    recorded: dict[str, list[NormalisedEvent]] = {}
    for event in batch:
        if result.outcomes.get(event.key) in ("flattred", "pledge"):
            recorded.setdefault(event.platform, []).append(event)
    e = outbound_endpoints.c
    if not recorded or conn.execute(
            select(e.id).where(e.enabled.is_(True),
                               or_(e.event_types.contains("flattr.received"),
                                   e.event_types.contains("pledge.created"))).limit(1)
            ).first() is None:
        return []
    ids: list[int] = []
    now = utcnow()
    for platform, events in recorded.items():
        for start in range(0, len(events), 500):
            chunk = events[start:start + 500]
            rows = conn.execute(_flattr_query(platform, {event.content_id for event in chunk},
                                              {event.event_id for event in chunk})).all()
            endpoints = _subscribers(conn, {row.claimed_by for row in rows})
            for row in rows:
                ids += _emit_flattr(conn, config, row, endpoints, now)
    return ids


def _emit_flattr(conn: Connection, config: Settings, row: Row[Any],
                 endpoints: Mapping[int | None, list[tuple[int, tuple[str, ...]]]],
                 now: datetime) -> list[int]:
    event_type = "pledge.created" if row.claimed_by is None else "flattr.received"
    targets = [endpoint_id for endpoint_id, kinds in endpoints.get(row.claimed_by, [])
               if event_type in kinds]
    if not targets:
        return []
    data = {"flattr_id": row.id, "giver": row.giver,
            "occurred_at": row.occurred_at.isoformat(timespec="seconds") + "Z",
            "month": row.month, "late": row.late,
            "thing": {"platform": row.platform, "content_id": row.content_id,
                      "url": row.url, "title": row.title},
            "owner": {"platform": row.platform, "platform_user_id": row.platform_user_id,
                      "username": row.username}}
    if row.claimed_by is None:
        data["claim_url"] = claim_url(config, row.platform, row.platform_user_id)
    key = f"{'pledge' if row.claimed_by is None else 'flattr'}:{row.id}"
    return _record_deliveries(conn, targets, event_type, data, key, now)


def _flattr_query(platform: str, content_ids: set[str], event_ids: set[str]) -> Any:
    """The live flattrs made by `event_ids` (unique per platform) of things `content_ids`."""
    return (select(flattrs.c.id, flattrs.c.occurred_at, flattrs.c.month, flattrs.c.late,
                   users.c.name.label("giver"), things.c.platform, things.c.content_id,
                   things.c.url, things.c.title, identities.c.platform_user_id,
                   identities.c.username, identities.c.claimed_by)
            .join(things, things.c.id == flattrs.c.thing_id)
            .join(identities, identities.c.id == things.c.owner_identity_id)
            .join(users, users.c.id == flattrs.c.giver_id)
            .where(things.c.platform == platform, things.c.content_id.in_(content_ids),
                   flattrs.c.source_event_id.in_(event_ids), flattrs.c.retracted_at.is_(None))
            .order_by(flattrs.c.id))


def emit_settlement(conn: Connection, config: Settings, month: str) -> list[int]:
    """Emit `settlement.completed` to each user who received money in settled `month`: how
    many flattrs, the gross amount, the fee and the net, in minor units. Emitting a month
    again delivers nothing new."""
    ids: list[int] = []
    for row in conn.execute(
            select(shares.c.receiver_id, func.count().label("flattrs"),
                   func.sum(shares.c.share).label("amount"), func.sum(shares.c.fee).label("fee"),
                   func.sum(shares.c.net).label("net"))
            .where(shares.c.month == month).group_by(shares.c.receiver_id)
            .order_by(shares.c.receiver_id)):
        data = {"month": month, "currency": config.currency, "flattrs": int(row.flattrs),
                "amount": int(row.amount), "fee": int(row.fee), "net": int(row.net)}
        ids += emit(conn, "settlement.completed", data, row.receiver_id,
                    key=f"settlement:{month}")
    return ids


# --- Sending ----------------------------------------------------------------------------


def enqueue(redis: Redis, delivery_ids: Iterable[int]) -> int:
    """Put deliveries on the `outbound` queue (after the commit that recorded them). A Redis
    failure is logged, not raised: `dispatch_due` queues them later. Returns how many."""
    return enqueue_ids(redis, *JOB, delivery_ids, timeout=DELIVER_TIMEOUT, describe=DESCRIBE)



def deliver(delivery_id: int) -> str:
    """The RQ job: one attempt of a delivery; a failure that will be retried queues the next
    attempt at its time. Returns the delivery's state afterwards."""
    context = current()
    outcome = attempt(context.engine, context.config, delivery_id)
    if outcome.retry_at is not None:  # Redis down: dispatch_due sends it once it is due
        enqueue_ids(context.redis, *JOB, [delivery_id], timeout=DELIVER_TIMEOUT, describe=DESCRIBE,
                    delay=outcome.retry_at - utcnow())
    return outcome.state


def dispatch_due(now: datetime | None = None) -> int:
    """The scheduler's sweep: queue the deliveries that have been due for longer than
    `outbound.sweep_seconds` (their job was lost, or never queued). Returns how many."""
    context = current()
    now = now or utcnow()
    stale = now - timedelta(seconds=context.config.outbound.sweep_seconds)
    with context.engine.connect() as conn:
        ids = list(conn.execute(
            select(outbound_deliveries.c.id)
            .where(outbound_deliveries.c.state == "pending",
                   outbound_deliveries.c.next_attempt_at <= stale)
            .order_by(outbound_deliveries.c.next_attempt_at).limit(DISPATCH_LIMIT)).scalars())
    count = enqueue(context.redis, ids)
    if count:
        log.info("outbound_dispatched", deliveries=count)
    return count


def attempt(engine: Engine, config: Settings, delivery_id: int, *,
            now: datetime | None = None, post: Post | None = None) -> Attempt:
    """Send delivery `delivery_id` once if it is due at `now` (naive UTC; the clock of the
    retry schedule) and record the outcome. The signature's timestamp is the real time of
    sending, which receivers check against their own clock.

    The row is leased (its next attempt pushed past the HTTP timeout) in a short transaction
    before sending, so a duplicate job skips it, and no transaction is held open while the
    endpoint answers. `post` defaults to one that reaches public addresses only (unless
    `outbound.allow_private`), checked again at each attempt."""
    now = now or utcnow()
    timeout = config.outbound.timeout_seconds
    d, e = outbound_deliveries.c, outbound_endpoints.c
    with engine.begin() as conn:
        row = conn.execute(
            select(d.id, d.state, d.next_attempt_at, d.attempts, d.webhook_id, d.payload,
                   d.endpoint_id, e.url, e.secret, e.enabled, e.disabled_reason)
            .join(outbound_endpoints, e.id == d.endpoint_id)
            .where(d.id == delivery_id).with_for_update(of=outbound_deliveries)).one_or_none()
        if row is None:
            return Attempt("missing")
        if row.state != "pending" or row.next_attempt_at > now:
            return Attempt("not_due")
        if not row.enabled:
            _finish(conn, delivery_id, "failed", f"endpoint disabled: {row.disabled_reason}")
            return Attempt("failed")
        conn.execute(update(outbound_deliveries).where(d.id == delivery_id)
                     .values(next_attempt_at=now + timedelta(seconds=timeout + 60)))
    if post is None:
        with guarded_session(_guard(config)) as session:
            status, error, elapsed_ms = _send(row, session.post, timeout)
    else:
        status, error, elapsed_ms = _send(row, post, timeout)
    with engine.begin() as conn:
        return _record(conn, config, row, now, status, error, elapsed_ms)


def _guard(config: Settings) -> Guard:
    return Guard.from_config(config, config.outbound.allow_private)


def _send(row: Row[*tuple[Any, ...]], post: Post,
          timeout: float) -> tuple[int | None, str | None, int]:
    """POST the signed delivery: (HTTP status or None, error or None, milliseconds)."""
    sent_at = datetime.now(UTC)
    headers = {"content-type": "application/json", "user-agent": "flattr-hub-webhooks",
               "webhook-id": row.webhook_id,
               "webhook-timestamp": str(int(sent_at.timestamp())),
               "webhook-signature": Webhook(row.secret).sign(row.webhook_id, sent_at,
                                                             row.payload)}
    started = time.monotonic()
    try:
        # stream=True: the answer's body is never read, whatever its size
        response = post(row.url, data=row.payload.encode(), headers=headers, timeout=timeout,
                        allow_redirects=False, stream=True)
        status: int | None = response.status_code
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        response.close()
    except UnsafeTarget:
        status, error = None, "refused: the host has no public address"
    except requests.Timeout:
        status, error = None, "the endpoint did not answer in time"
    except (requests.RequestException, ValueError):  # ValueError: a URL it can't use
        status, error = None, "the endpoint could not be reached"
    return status, error, int((time.monotonic() - started) * 1000)


def _record(conn: Connection, config: Settings, row: Row[*tuple[Any, ...]],
            now: datetime, status: int | None, error: str | None, elapsed_ms: int) -> Attempt:
    attempts = row.attempts + 1
    conn.execute(outbound_attempts.insert().values(
        delivery_id=row.id, attempted_at=now, status=status, error=error,
        duration_ms=elapsed_ms))
    conn.execute(update(outbound_deliveries).where(outbound_deliveries.c.id == row.id)
                 .values(attempts=attempts, last_attempt_at=now, last_status=status,
                         last_error=error))
    endpoint = outbound_endpoints.c
    log_fields = {"delivery": row.id, "endpoint": row.endpoint_id, "attempt": attempts,
                  "status": status}
    if error is None:
        _finish(conn, row.id, "delivered", None, delivered_at=now)
        conn.execute(update(outbound_endpoints).where(endpoint.id == row.endpoint_id)
                     .values(failing_since=None))
        log.info("outbound_delivered", **log_fields)
        record_outbound("delivered")
        return Attempt("delivered", status)
    failing_since = conn.execute(
        select(endpoint.failing_since).where(endpoint.id == row.endpoint_id)).scalar() or now
    conn.execute(update(outbound_endpoints).where(endpoint.id == row.endpoint_id)
                 .values(failing_since=failing_since))
    limit = timedelta(days=config.outbound.disable_after_days)
    if status == 410:
        reason = "the endpoint answered 410 Gone"
    elif now - failing_since >= limit:
        reason = f"every attempt failed since {failing_since.isoformat(timespec='seconds')}Z"
    else:
        reason = None
    if reason is not None:
        _disable(conn, row.endpoint_id, reason)
        log.warning("outbound_endpoint_disabled", reason=reason, **log_fields)
        record_outbound("failed")
        return Attempt("failed", status)
    if attempts >= len(RETRY_SCHEDULE):
        _finish(conn, row.id, "failed", error)
        log.warning("outbound_failed", error=error, **log_fields)
        record_outbound("failed")
        return Attempt("failed", status)
    retry_at = now + RETRY_SCHEDULE[attempts]
    conn.execute(update(outbound_deliveries).where(outbound_deliveries.c.id == row.id)
                 .values(next_attempt_at=retry_at))
    log.info("outbound_retry", error=error, retry_at=retry_at.isoformat(), **log_fields)
    record_outbound("retry")
    return Attempt("pending", status, retry_at)


def _finish(conn: Connection, delivery_id: int, state: str, error: str | None,
            delivered_at: datetime | None = None) -> None:
    values: dict[str, Any] = {"state": state, "next_attempt_at": None,
                              "delivered_at": delivered_at}
    if error is not None:
        values["last_error"] = error[:255]
    conn.execute(update(outbound_deliveries)
                 .where(outbound_deliveries.c.id == delivery_id).values(**values))


def _disable(conn: Connection, endpoint_id: int, reason: str) -> None:
    """Disable the endpoint and fail its pending deliveries."""
    conn.execute(update(outbound_endpoints).where(outbound_endpoints.c.id == endpoint_id)
                 .values(enabled=False, disabled_reason=reason))
    conn.execute(update(outbound_deliveries)
                 .where(outbound_deliveries.c.endpoint_id == endpoint_id,
                        outbound_deliveries.c.state == "pending")
                 .values(state="failed", next_attempt_at=None,
                         last_error=f"endpoint disabled: {reason}"[:255]))


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
