"""Inbox commands for operators: list the events the worker quarantined (it could not record
them), put one back into the inbox (`retry`), or set it aside for good (`discard`). The same
actions are on /ops/quarantine; see `pipeline.quarantine`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from redis.exceptions import RedisError

from base.errors import UserError
from base.redis_conn import connect
from flattr_hub.commands import add_command, record_id, usage
from pipeline import quarantine
from pipeline.queues import wake


def register(commands: Any) -> None:
    group = add_command(commands, "inbox", "the inbox's quarantined events",
                        usage("inbox quarantined|retry ID|discard ID"))
    actions = group.add_subparsers(metavar="ACTION")
    listing = add_command(actions, "quarantined", "list quarantined events, oldest first",
                          _list)
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    retry = add_command(actions, "retry", "put a quarantined event back into the inbox", _retry)
    retry.add_argument("id", type=record_id)
    discard = add_command(actions, "discard", "discard a quarantined event (never recorded)",
                          _discard)
    discard.add_argument("id", type=record_id)


def _list(args: argparse.Namespace, app: Any) -> int:
    with app.engine.connect() as conn:
        held = quarantine.listing(conn, limit=max(1, min(args.limit, 10_000)))
    if args.json:
        print(json.dumps([{"id": h.id, "platform": h.platform, "event_id": h.event_id,
                           "reason": h.reason, "attempts": h.attempts,
                           "received_at": h.received_at.isoformat() + "Z",
                           "first_seen": h.first_seen.isoformat() + "Z",
                           "last_seen": h.last_seen.isoformat() + "Z"} for h in held],
                         indent=2))
        return 0
    if not held:
        print("no quarantined events")
    for h in held:
        print(f"{h.id}\t{h.platform}\t{h.event_id}\tattempts {h.attempts}\t"
              f"first {h.first_seen:%Y-%m-%d %H:%M:%S}\tlast {h.last_seen:%Y-%m-%d %H:%M:%S}\t"
              f"{h.reason}")
    return 0


def _retry(args: argparse.Namespace, app: Any) -> int:
    try:
        with app.engine.begin() as conn:
            quarantine.retry(conn, args.id)
    except quarantine.NotQuarantined as exc:
        raise UserError(str(exc)) from None
    try:
        woke = wake(connect(app.config), force=True)
    except RedisError:
        woke = False
    print(f"event {args.id} is back in the inbox"
          + ("" if woke else " (the queue is unreachable: the next sweep records it)"))
    return 0


def _discard(args: argparse.Namespace, app: Any) -> int:
    try:
        with app.engine.begin() as conn:
            quarantine.discard(conn, args.id)
    except quarantine.NotQuarantined as exc:
        raise UserError(str(exc)) from None
    print(f"event {args.id} discarded")
    return 0
