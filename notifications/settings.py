"""A member's notification settings: whether they are e-mailed when someone they pledged to
joins (on unless turned off), and the address it goes to (once verified)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from base.tables.members import logins
from base.tables.notifications import notification_settings
from ledger.sql import dialect_insert, utcnow


@dataclass(frozen=True)
class NotificationSettings:
    pledgee_joined: bool
    email: str | None
    email_verified: bool = False


def settings_of(conn: Connection, user_id: int) -> NotificationSettings:
    row = conn.execute(
        select(logins.c.email, logins.c.email_verified_at, notification_settings.c.pledgee_joined)
        .select_from(logins)
        .outerjoin(notification_settings, notification_settings.c.user_id == logins.c.user_id)
        .where(logins.c.user_id == user_id)).one_or_none()
    if row is None:
        return NotificationSettings(True, None)
    return NotificationSettings(row.pledgee_joined is not False, row.email,
                                row.email_verified_at is not None)


def set_pledgee_joined(conn: Connection, user_id: int, wanted: bool) -> NotificationSettings:
    """Turn the "someone you pledged to joined" e-mails on or off; returns the settings."""
    stmt = dialect_insert(conn, notification_settings).values(
        user_id=user_id, pledgee_joined=wanted, updated_at=utcnow())
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["user_id"],
        set_={"pledgee_joined": stmt.excluded.pledgee_joined,
              "updated_at": stmt.excluded.updated_at}))
    return settings_of(conn, user_id)
