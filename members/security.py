"""What a member's security page shows: their web sessions and the applications they
authorized to use the API for them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from members.apps import Authorization, authorizations_of
from members.sessions import ActiveSession, sessions_of


@dataclass(frozen=True)
class Overview:
    sessions: list[ActiveSession]
    authorizations: list[Authorization]


def overview(conn: Connection, uid: int, session_id: str) -> Overview:
    return Overview(sessions_of(conn, uid, session_id), authorizations_of(conn, uid))
