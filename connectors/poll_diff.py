"""The diff of a poll: a liked item not seen before is a like, dated and identified by the time
it was first seen; an item seen before that is missing from a *complete* snapshot is an unlike.
The event id is deterministic: `(platform, actor, content, kind, first-seen time)`, so replaying
one observation is deduplicated while a like after an unlike is a new event."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime

import structlog

from connectors.poll_types import Account, Item, Snapshot
from ledger.events import NormalisedEvent, check_event

log = structlog.get_logger(__name__)


def event_id(platform: str, actor: str, content: str, kind: str, seen_at: datetime) -> str:
    """The deterministic id of a polled observation."""
    key = "\x1f".join((platform, actor, content, kind, seen_at.isoformat()))
    return "poll-" + hashlib.sha256(key.encode()).hexdigest()[:48]


def diff(seen: Mapping[str, Item], snapshot: Snapshot) -> tuple[list[Item], list[Item]]:
    """(new items, vanished items). Vanished only counts when the snapshot is complete."""
    current = {item.content_id: item for item in snapshot.items}
    new = [item for cid, item in current.items() if cid not in seen]
    gone = [item for cid, item in seen.items() if cid not in current] if snapshot.complete else []
    return new, gone


def in_view(seen: Mapping[str, Item], snapshot: Snapshot,
            new: list[Item]) -> tuple[list[Item], list[Item]]:
    """(new likes, older likes that came into view) of the `new` items. In a list ordered
    newest first, an unseen item below one seen before was liked before it: it was beyond the
    pages read until an unlike higher up moved it into them. It is stored as seen, and is no
    like now."""
    if not snapshot.newest_first:
        return new, []
    first = next((n for n, item in enumerate(snapshot.items) if item.content_id in seen), None)
    if first is None:
        return new, []
    above = {item.content_id for item in snapshot.items[:first]}
    return ([item for item in new if item.content_id in above],
            [item for item in new if item.content_id not in above])


def events_for(account: Account, new: Sequence[Item], gone: Sequence[Item],
               now: datetime) -> list[NormalisedEvent]:
    def make(item: Item, kind: str) -> NormalisedEvent:
        return NormalisedEvent(
            event_id=event_id(account.platform, account.platform_user_id, item.content_id, kind,
                              now),
            platform=account.platform, kind=kind, actor_id=account.platform_user_id,
            content_id=item.content_id, owner_id=item.owner_id,
            occurred_at=item.liked_at if kind == "like" and item.liked_at else now,
            url=item.url, title=(item.title or "")[:512] or None)

    return [make(item, "like") for item in new] + [make(item, "unlike") for item in gone]


def valid_items(account: Account, snapshot: Snapshot, now: datetime) -> list[Item]:
    """The snapshot's items whose events pass the event rules (`ledger.validation`); an item
    that does not (a lone surrogate in its title, a `javascript:` link, an id too long) is
    skipped and logged, never stored, so one bad item can not stop an account's polls."""
    kept = []
    for item in snapshot.items:
        try:
            check_event(events_for(account, [item], [], now)[0])
        except (ValueError, TypeError) as exc:
            log.warning("poll_item_skipped", platform=account.platform, account=account.id,
                        reason=str(exc))
            continue
        kept.append(item)
    return kept
