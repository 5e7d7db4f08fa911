"""Server-side web sessions: the session cookie carries only a random session id; the hub keeps
its SHA-256 hash with the member, when it started and when it was last used. Logging out
deletes the row, so a saved cookie opens nothing afterwards; changing the password or "log out
other sessions" deletes the member's other rows. A session ends after `idle` seconds unused or
`absolute` seconds after it started, whichever comes first."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, or_, select, update

from base.tables.members import logins, web_sessions
from ledger.schema import users
from ledger.sql import utcnow
from members.logins import Member

TOUCH = timedelta(seconds=60)  # last_seen_at is written at most this often per session


@dataclass(frozen=True)
class Lifetimes:
    idle: int  # seconds
    absolute: int  # seconds


@dataclass(frozen=True)
class ActiveSession:
    created_at: datetime
    last_seen_at: datetime
    current: bool


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(conn: Connection, uid: int, lifetimes: Lifetimes, replaces: str | None = None,
                  now: datetime | None = None) -> str:
    """A new session of member `uid`; returns its id (for the cookie only). The browser's
    previous session (`replaces`) ends; sessions that have expired, anyone's, are deleted on
    the way."""
    now = now or utcnow()
    if replaces is not None:
        end_session(conn, replaces)
    conn.execute(delete(web_sessions).where(or_(
        web_sessions.c.last_seen_at < now - timedelta(seconds=lifetimes.idle),
        (web_sessions.c.user_id == uid)
        & (web_sessions.c.created_at < now - timedelta(seconds=lifetimes.absolute)))))
    session_id = secrets.token_urlsafe(32)
    conn.execute(web_sessions.insert().values(id_hash=_hash(session_id), user_id=uid,
                                              created_at=now, last_seen_at=now))
    return session_id


def session_member(conn: Connection, session_id: str, lifetimes: Lifetimes,
                   now: datetime | None = None) -> Member | None:
    """The member of a live session, or None (unknown, ended or expired: then deleted)."""
    now = now or utcnow()
    key = _hash(session_id)
    row = conn.execute(
        select(web_sessions.c.created_at, web_sessions.c.last_seen_at, users.c.id, users.c.name,
               logins.c.email, logins.c.operator)
        .join(users, users.c.id == web_sessions.c.user_id)
        .join(logins, logins.c.user_id == users.c.id)
        .where(web_sessions.c.id_hash == key)).first()
    if row is None:
        return None
    if (row.last_seen_at <= now - timedelta(seconds=lifetimes.idle)
            or row.created_at <= now - timedelta(seconds=lifetimes.absolute)):
        conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == key))
        return None
    if now - row.last_seen_at >= TOUCH:
        conn.execute(update(web_sessions).where(web_sessions.c.id_hash == key)
                     .values(last_seen_at=now))
    return Member(row.id, row.name, row.email, row.operator)


def end_session(conn: Connection, session_id: str) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == _hash(session_id)))


def end_other_sessions(conn: Connection, uid: int, session_id: str) -> int:
    """End every session of member `uid` but `session_id`; how many ended. (Setting a password
    ends them all: `members.logins.set_password`.)"""
    return conn.execute(delete(web_sessions).where(
        web_sessions.c.user_id == uid, web_sessions.c.id_hash != _hash(session_id))).rowcount


def sessions_of(conn: Connection, uid: int, session_id: str) -> list[ActiveSession]:
    """Member `uid`'s sessions, newest first, marking the one of `session_id`."""
    current = _hash(session_id)
    rows = conn.execute(select(web_sessions).where(web_sessions.c.user_id == uid)
                        .order_by(web_sessions.c.created_at.desc())).all()
    return [ActiveSession(row.created_at, row.last_seen_at, row.id_hash == current)
            for row in rows]
