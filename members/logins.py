"""Signing up and signing in: argon2 password hashes, e-mail addresses, the operator flag.

A login belongs to a ledger user (`ledger.accounts.create_user` makes the user and its accounts).
Users who sign in only through a linked platform account have a login without a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, select, update

from base.tables.members import logins, web_sessions
from ledger.accounts import create_user
from ledger.errors import LedgerError
from ledger.schema import users
from ledger.sql import utcnow

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")
MIN_PASSWORD = 10
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Member:
    """A signed-in person, as the web pages see them."""

    id: int
    name: str
    email: str | None
    operator: bool


def sign_up(conn: Connection, name: str, password: str, email: str | None = None) -> int:
    """Create user `name` with a password login; return the user id. LedgerError explains a
    refusal (name taken or malformed, password too short, e-mail malformed). The e-mail
    address is stored unverified (`members.emails` verifies it)."""
    if len(password) < MIN_PASSWORD:
        raise LedgerError(f"the password must be at least {MIN_PASSWORD} characters")
    check_email(email)
    uid = create_user(conn, name)
    conn.execute(logins.insert().values(user_id=uid, email=email or None,
                                        password_hash=_hasher.hash(password),
                                        created_at=utcnow()))
    return uid


def sign_up_linked(conn: Connection, name: str) -> int:
    """Create user `name` who signs in only through linked platform accounts."""
    uid = create_user(conn, name)
    conn.execute(logins.insert().values(user_id=uid, created_at=utcnow()))
    return uid


def authenticate(conn: Connection, name: str, password: str) -> int | None:
    """The user id when `password` is `name`'s password, else None (same answer for an unknown
    name, so the reply tells nothing about which names exist)."""
    row = conn.execute(
        select(users.c.id, logins.c.password_hash)
        .join(logins, logins.c.user_id == users.c.id).where(users.c.name == name)
    ).first()
    if row is None or row.password_hash is None:
        _hasher.hash(password)  # spend the same time as a real check
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        conn.execute(update(logins).where(logins.c.user_id == row.id)
                     .values(password_hash=_hasher.hash(password)))
    return row.id


def ensure_login(conn: Connection, uid: int) -> None:
    """Give an existing ledger user (made by `flattr-hub user create`) a login row."""
    if conn.execute(select(logins.c.user_id).where(logins.c.user_id == uid)).first() is None:
        conn.execute(logins.insert().values(user_id=uid, created_at=utcnow()))


def set_password(conn: Connection, uid: int, password: str) -> None:
    """Set (or reset) user `uid`'s password; every web session of theirs ends."""
    if len(password) < MIN_PASSWORD:
        raise LedgerError(f"the password must be at least {MIN_PASSWORD} characters")
    ensure_login(conn, uid)
    conn.execute(update(logins).where(logins.c.user_id == uid)
                 .values(password_hash=_hasher.hash(password)))
    conn.execute(delete(web_sessions).where(web_sessions.c.user_id == uid))


def change_password(conn: Connection, uid: int, current: str, new: str) -> None:
    """The member changes their own password, giving the current one (LedgerError when it is
    wrong or the new one too short); every web session of theirs ends."""
    row = conn.execute(select(logins.c.password_hash).where(logins.c.user_id == uid)).first()
    try:
        if row is None or row.password_hash is None:
            raise VerificationError
        _hasher.verify(row.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise LedgerError("the current password is not right") from None
    set_password(conn, uid, new)


def set_operator(conn: Connection, uid: int, operator: bool) -> None:
    """Grant or withdraw operator rights (the `/ops` pages)."""
    ensure_login(conn, uid)
    conn.execute(update(logins).where(logins.c.user_id == uid).values(operator=operator))


def check_email(email: str | None) -> None:
    """LedgerError when `email` is given and is not shaped like an address. Whether someone
    else uses it is never said (`members.emails`)."""
    if email and not EMAIL.match(email):
        raise LedgerError("that is not an e-mail address")

