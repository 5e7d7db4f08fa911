"""Outbound webhook endpoints: the users' own (members manage theirs on /settings/webhooks,
operators anyone's with `flattr-hub webhooks`; both through the functions here, which take
`owner` to find only that user's), and their delivery logs.

An endpoint subscribes to event types (`outbound.events`); its secret (`whsec_`, Standard
Webhooks) signs every delivery and is shown once, when it is registered. Its host must resolve
to public addresses, checked when it is registered and again at each attempt, connecting to the
checked address (`base.public_net`), unless `outbound.allow_private`. An endpoint that answers
410 Gone, or whose attempts have failed without a success in between for
`outbound.disable_after_days`, is disabled (`disable`), and its pending deliveries fail.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Row, and_, select, update

from base.config import Settings
from base.public_net import Guard, UnsafeTarget
from base.tables.outbound import outbound_attempts, outbound_deliveries, outbound_endpoints
from ledger.schema import users
from ledger.sql import utcnow

EVENT_TYPES = ("flattr.received", "pledge.created", "settlement.completed")
USER_EVENT_TYPES = ("flattr.received", "settlement.completed")  # the rest: partners only


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
        guard(config).check(str(parts.hostname),
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
    disable(conn, endpoint_id, reason)


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


def guard(config: Settings) -> Guard:
    return Guard.from_config(config, config.outbound.allow_private)


def disable(conn: Connection, endpoint_id: int, reason: str) -> None:
    """Disable the endpoint and fail its pending deliveries."""
    conn.execute(update(outbound_endpoints).where(outbound_endpoints.c.id == endpoint_id)
                 .values(enabled=False, disabled_reason=reason))
    conn.execute(update(outbound_deliveries)
                 .where(outbound_deliveries.c.endpoint_id == endpoint_id,
                        outbound_deliveries.c.state == "pending")
                 .values(state="failed", next_attempt_at=None,
                         last_error=f"endpoint disabled: {reason}"[:255]))
