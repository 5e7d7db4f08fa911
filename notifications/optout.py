"""Creators' opt-outs: every "pledges are waiting" message carries a link with a signed token
naming the identity; following it (GET shows a confirmation, POST records it) means that
identity's creator is never told anything again.

The token is `<identity id>.<HMAC-SHA256 of "optout:<identity id>">` (url-safe base64, cut
to 128 bits) keyed with `web.token_key`, so the hub and the workers agree on it and nobody
can opt out an identity whose link they were not sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from base.config import Settings
from base.links import base_url
from base.tables.notifications import notification_optouts, notification_outbox
from base.vault import web_keys
from ledger.schema import identities
from ledger.sql import dialect_insert, utcnow


class OptOutError(Exception):
    """The opt-out link is not one the hub sent."""


@dataclass(frozen=True)
class OptOutTarget:
    platform: str
    name: str
    opted_out: bool


def optout_token(config: Settings, identity_id: int) -> str:
    return f"{identity_id}.{_mac(config, identity_id)}"


def optout_url(config: Settings, identity_id: int) -> str:
    return f"{base_url(config)}/notifications/optout/{optout_token(config, identity_id)}"




def identity_of(config: Settings, token: str) -> int:
    """The identity id a token names; OptOutError when it was not made by this hub."""
    number, _, mac = token.partition(".")
    if not (number.isascii() and number.isdigit()) or len(number) > 18 or not hmac.compare_digest(
            mac.encode(), _mac(config, int(number)).encode()):
        raise OptOutError("this opt-out link is not valid; use the link from the message")
    return int(number)


def optout_target(conn: Connection, config: Settings, token: str) -> OptOutTarget:
    """What an opt-out link is about, for the confirmation page."""
    return _target(conn, identity_of(config, token))


def _target(conn: Connection, identity_id: int) -> OptOutTarget:
    row = conn.execute(select(identities.c.platform, identities.c.platform_user_id,
                              identities.c.username)
                       .where(identities.c.id == identity_id)).one_or_none()
    if row is None:
        raise OptOutError("this opt-out link is not valid; use the link from the message")
    opted = conn.execute(select(notification_optouts.c.identity_id)
                         .where(notification_optouts.c.identity_id == identity_id)).first()
    return OptOutTarget(row.platform, row.username or row.platform_user_id, opted is not None)


def opt_out(conn: Connection, config: Settings, token: str) -> OptOutTarget:
    """Record that the identity's creator is never to be told again, and drop its notices
    not yet sent. Doing it twice changes nothing."""
    identity_id = identity_of(config, token)
    target = _target(conn, identity_id)
    conn.execute(dialect_insert(conn, notification_optouts)
                 .values(identity_id=identity_id, created_at=utcnow())
                 .on_conflict_do_nothing(index_elements=["identity_id"]))
    conn.execute(update(notification_outbox)
                 .where(notification_outbox.c.identity_id == identity_id,
                        notification_outbox.c.kind == "pledges_waiting",
                        notification_outbox.c.state == "pending")
                 .values(state="skipped", next_attempt_at=None, last_error="opted out"))
    return OptOutTarget(target.platform, target.name, True)


def _mac(config: Settings, identity_id: int) -> str:
    digest = hmac.new(web_keys(config)["token_key"], f"optout:{identity_id}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")
