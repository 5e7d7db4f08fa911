"""Outbound webhook commands: register an endpoint (its secret is printed once, here and never
again), list a user's endpoints, enable, disable or delete one, read the delivery log, and
resend a delivery. Members do the same for their own endpoints on /settings/webhooks, through
the same functions of `outbound`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from base.errors import UserError
from base.redis_conn import connect
from flattr_hub.commands import add_command, usage
from ledger import accounts
from outbound import delivery, endpoints


def register(commands: Any) -> None:
    hooks = add_command(commands, "webhooks", "outbound webhooks to creators and partners",
                        usage("webhooks add|list|enable|disable|delete|deliveries|resend ..."))
    actions = hooks.add_subparsers(metavar="ACTION")
    add = add_command(actions, "add", "register an endpoint for a user and print its secret "
                      "(once)", _add)
    add.add_argument("name", help="hub user name")
    add.add_argument("url", help="http(s) URL that receives the deliveries")
    add.add_argument("--events", required=True, type=_event_types, metavar="TYPE,...",
                     help=f"event types: {', '.join(endpoints.EVENT_TYPES)}")
    add.add_argument("--partner", action="store_true", help="a partner endpoint: it receives "
                     "the events that have no owner on the hub (pledges to unclaimed "
                     "identities)")
    listing = add_command(actions, "list", "list a user's endpoints", _list)
    listing.add_argument("name", help="hub user name")
    listing.add_argument("--json", action="store_true", help="print JSON")
    enable = add_command(actions, "enable", "enable an endpoint that was disabled", _enable)
    enable.add_argument("endpoint_id", type=int)
    disable = add_command(actions, "disable", "disable an endpoint (its pending deliveries "
                          "fail)", _disable)
    disable.add_argument("endpoint_id", type=int)
    delete = add_command(actions, "delete", "delete an endpoint and its delivery log", _delete)
    delete.add_argument("endpoint_id", type=int)
    log = add_command(actions, "deliveries", "the delivery log, newest first", _deliveries)
    log.add_argument("--endpoint", type=int, metavar="ID", help="only this endpoint's")
    log.add_argument("--limit", type=int, default=50, help="at most this many (50)")
    log.add_argument("--json", action="store_true", help="print JSON")
    resend = add_command(actions, "resend", "send a delivery again from the start of the retry "
                         "schedule", _resend)
    resend.add_argument("delivery_id", type=int)


def _event_types(text: str) -> tuple[str, ...]:
    try:
        return endpoints.parse_event_types(text)
    except endpoints.OutboundError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add(args: argparse.Namespace, app: Any) -> int:
    try:
        with app.engine.begin() as conn:
            uid = accounts.user_id(conn, args.name)
            endpoint_id, secret = endpoints.add_endpoint(conn, app.config, uid, args.url,
                                                        args.events, partner=args.partner)
    except endpoints.OutboundError as exc:
        raise UserError(str(exc)) from None
    kind = "partner endpoint" if args.partner else "endpoint"
    print(f"{kind} {endpoint_id} of {args.name}: {args.url} ({', '.join(args.events)})")
    print(f"secret: {secret}")
    print("Keep the secret: it is shown only now. Verify deliveries with it (Standard Webhooks).")
    return 0


def _list(args: argparse.Namespace, app: Any) -> int:
    with app.engine.connect() as conn:
        found = endpoints.list_endpoints(conn, accounts.user_id(conn, args.name))
    if args.json:
        print(json.dumps([{"id": e.id, "url": e.url, "events": list(e.event_types),
                           "partner": e.partner, "enabled": e.enabled,
                           "disabled_reason": e.disabled_reason,
                           "failing_since": _time(e.failing_since),
                           "created_at": _time(e.created_at)} for e in found], indent=2))
        return 0
    for e in found:
        state = "enabled" if e.enabled else f"disabled: {e.disabled_reason}"
        print(f"{e.id}\t{e.url}\t{','.join(e.event_types)}\t"
              f"{'partner' if e.partner else 'user'}\t{state}")
    return 0


def _on_endpoint(change: Callable[[Connection, int], None], done: str
                 ) -> Callable[[argparse.Namespace, Any], int]:
    """A handler applying `change(conn, endpoint_id)` and saying `endpoint N <done>`."""
    def handler(args: argparse.Namespace, app: Any) -> int:
        try:
            with app.engine.begin() as conn:
                change(conn, args.endpoint_id)
        except endpoints.OutboundError as exc:
            raise UserError(str(exc)) from None
        print(f"endpoint {args.endpoint_id} {done}")
        return 0
    return handler


_enable = _on_endpoint(endpoints.enable_endpoint, "enabled")
_disable = _on_endpoint(
    lambda conn, endpoint: endpoints.disable_endpoint(conn, endpoint, "disabled by an operator"),
    "disabled")
_delete = _on_endpoint(endpoints.delete_endpoint, "deleted")


def _deliveries(args: argparse.Namespace, app: Any) -> int:
    if args.limit < 1:
        raise UserError("--limit must be at least 1")
    with app.engine.connect() as conn:
        rows = endpoints.list_deliveries(conn, args.endpoint, args.limit)
    if args.json:
        print(json.dumps([{key: _time(value) if isinstance(value, datetime) else value
                           for key, value in row._mapping.items()} for row in rows], indent=2))
        return 0
    for row in rows:
        due = f"next {_time(row.next_attempt_at)}" if row.state == "pending" else ""
        last = row.last_error or (f"HTTP {row.last_status}" if row.last_status else "")
        print("\t".join(str(part) for part in (
            row.id, row.endpoint_id, row.event_type, row.webhook_id, row.state,
            f"{row.attempts} attempts", due or "-", last or "-")))
    return 0


def _resend(args: argparse.Namespace, app: Any) -> int:
    try:
        queued = delivery.resend(app.engine, args.delivery_id, connect(app.config))
    except endpoints.OutboundError as exc:
        raise UserError(str(exc)) from None
    print(f"delivery {args.delivery_id} will be sent again"
          + ("" if queued else " (the queue is unreachable: the next sweep sends it)"))
    return 0


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds") + "Z"
