"""E-mail addresses of members, verified by a signed link before anything uses them.

A member may ask for any address; it is stored on their login unverified, and whoever asked
gets the same answer whether or not the address is someone else's (no enumeration). Only one
login can hold an address verified, without regard to case (a unique index on lower(email)
among verified addresses): when the address is free, the link to confirm it is e-mailed to
it; when another member holds it verified, that member is told instead, and the claim can
never be confirmed. Notices use `base.tables.members.verified_email` only.

The link carries `<user id>.<expiry>.<HMAC-SHA256>` keyed with `web.token_key` over the user
id, the expiry and the address in lower case, so it confirms only the address it was sent to,
only for that member, and only for `VERIFY_SECONDS`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from base.config import Settings
from base.links import base_url
from base.tables.members import logins
from base.vault import web_keys
from ledger.schema import users
from ledger.sql import utcnow
from members.logins import check_email, sign_up

VERIFY_SECONDS = 3 * 24 * 3600
VERIFY_PATH = "/settings/email/verify"


class EmailError(Exception):
    """A confirmation link that does not (or no longer) confirm anything; a sentence."""


@dataclass(frozen=True)
class Mail:
    """A message to send once the transaction is committed."""

    to: str
    subject: str
    text: str


def sign_up_with_email(conn: Connection, config: Settings, name: str, password: str,
                       email: str | None) -> tuple[int, Mail | None]:
    """Sign up `name` (see `members.logins.sign_up`) and claim `email` when given; the same
    outcome whether or not the address is known."""
    check_email(email)
    uid = sign_up(conn, name, password)
    return uid, claim_email(conn, config, uid, email) if email else None


def claim_email(conn: Connection, config: Settings, uid: int,
                email: str) -> Mail | None:
    """Member `uid` asks for `email` (LedgerError when it is not an address): stored
    unverified, and the message to send (a link to the address, or a word to the member who
    holds it verified). None when it is already theirs and verified."""
    check_email(email)
    mine = conn.execute(select(logins.c.email, logins.c.email_verified_at)
                        .where(logins.c.user_id == uid)).one()
    if mine.email_verified_at is not None and mine.email.lower() == email.lower():
        return None
    conn.execute(update(logins).where(logins.c.user_id == uid)
                 .values(email=email, email_verified_at=None))
    holder = conn.execute(
        select(users.c.name).join(logins, logins.c.user_id == users.c.id)
        .where(func.lower(logins.c.email) == email.lower(),
               logins.c.email_verified_at.is_not(None), logins.c.user_id != uid)).first()
    if holder is not None:
        return Mail(email, "Someone tried to use your e-mail address on Flattr Hub",
                    f"Someone asked to use this address for another Flattr Hub account.\n"
                    f"It stays with your account, {holder.name}; nothing changes.\n"
                    "If you forgot that you have an account, log in with that name.\n")
    link = f"{base_url(config)}{VERIFY_PATH}/{verify_token(config, uid, email)}"
    name = conn.execute(select(users.c.name).where(users.c.id == uid)).scalar_one()
    return Mail(email, "Confirm your e-mail address for Flattr Hub",
                f"Follow this link to confirm that this address is yours, for the Flattr Hub "
                f"account {name}:\n"
                f"{link}\n\nIt works for {VERIFY_SECONDS // 86400} days. If you did not ask "
                "for this, ignore this message.\n")


def verify_token(config: Settings, uid: int, email: str,
                 expires: int | None = None) -> str:
    expires = expires or int(time.time()) + VERIFY_SECONDS
    return f"{uid}.{expires}.{_mac(config, uid, expires, email)}"


def email_to_confirm(conn: Connection, config: Settings, token: str) -> str:
    """The address a confirmation link is for; EmailError when the link is not good."""
    return _checked(conn, config, token)[1]


def confirm_email(conn: Connection, config: Settings, token: str) -> str:
    """Follow a confirmation link: the member's address is verified; returns it. EmailError
    when the link is not good or another member verified the address first."""
    uid, email = _checked(conn, config, token)
    try:
        with conn.begin_nested():
            conn.execute(update(logins).where(logins.c.user_id == uid)
                         .values(email_verified_at=utcnow()))
    except IntegrityError:
        raise EmailError("that address is already confirmed for another account") from None
    return email


def _checked(conn: Connection, config: Settings, token: str) -> tuple[int, str]:
    refused = EmailError("this confirmation link is not valid any more; ask for a new one on "
                         "your security settings page")
    uid_text, _, rest = token.partition(".")
    expires_text, _, mac = rest.partition(".")
    if not (uid_text.isdigit() and len(uid_text) <= 18 and expires_text.isdigit()
            and len(expires_text) <= 12) or int(expires_text) < time.time():
        raise refused
    uid, expires = int(uid_text), int(expires_text)
    email = conn.execute(select(logins.c.email).where(logins.c.user_id == uid)).scalar()
    if not email or not hmac.compare_digest(mac.encode(),
                                            _mac(config, uid, expires, email).encode()):
        raise refused
    return uid, email


def _mac(config: Settings, uid: int, expires: int, email: str) -> str:
    message = f"verify-email:{uid}:{expires}:{email.lower()}".encode()
    digest = hmac.new(web_keys(config)["token_key"], message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")
