"""What a member's security page shows: their e-mail address and whether it is confirmed, their
web sessions, and the applications they authorized to use the API for them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from base.tables.members import logins
from members.apps import Authorization, authorizations_of
from members.sessions import ActiveSession, sessions_of


@dataclass(frozen=True)
class Overview:
    email: str | None
    email_verified: bool
    sessions: list[ActiveSession]
    authorizations: list[Authorization]


def overview(conn: Connection, uid: int, session_id: str) -> Overview:
    login = conn.execute(select(logins.c.email, logins.c.email_verified_at)
                         .where(logins.c.user_id == uid)).one()
    return Overview(login.email, login.email_verified_at is not None,
                    sessions_of(conn, uid, session_id), authorizations_of(conn, uid))
