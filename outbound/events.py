"""Outbound webhook events: what the hub tells creators and partners, recorded as one delivery
per subscribed, enabled endpoint by `emit` in the caller's transaction, so an event recorded is
an event delivered (or failed visibly) and never lost between the database and the queue. After
the commit the caller queues them (`outbound.delivery.enqueue`).

Event types:
- `flattr.received`: someone flattred a thing whose owner identity the endpoint's user claimed.
- `pledge.created`: a flattr of a thing whose owner identity nobody has claimed yet, with the
  URL where its owner can claim it (Flattr's partner `pendingclickcreate`). It goes to partner
  endpoints, which receive the events that have no owner on the hub (and only those; a user's
  own events go to the user's other endpoints).
- `settlement.completed`: a month was settled; what the endpoint's user received in it.

The body sent is `{"type", "timestamp", "data"}` as JSON, stored with the delivery so that every
attempt signs the same bytes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, func, or_, select

from base.config import Settings
from base.links import claim_url
from base.tables.outbound import outbound_deliveries, outbound_endpoints
from ledger.events import NormalisedEvent
from ledger.ingest import IngestResult
from ledger.schema import flattrs, identities, shares, things, users
from ledger.sql import dialect_insert, utcnow
from outbound.endpoints import EVENT_TYPES


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
