"""Members as the API shows them: their public profile, the private attributes some OAuth
scopes reveal (e-mail, registration time), and whether they have the means to flattr."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, select

from base.config import Settings
from base.tables.members import logins
from ledger.schema import accounts, users


@dataclass(frozen=True)
class Profile:
    id: int
    username: str
    email: str | None
    registered_at: datetime


def profile(conn: Connection, *, name: str | None = None, uid: int | None = None
            ) -> Profile | None:
    """The user named `name` (or with id `uid`), or None when there is none."""
    query = select(users.c.id, users.c.name, logins.c.email, users.c.created_at).outerjoin(
        logins, logins.c.user_id == users.c.id)
    query = query.where(users.c.name == name) if name is not None else query.where(
        users.c.id == uid)
    row = conn.execute(query).first()
    return None if row is None else Profile(*row)


def has_means(conn: Connection, uid: int, config: Settings) -> bool:
    """Whether the user would be funded if the month were settled now: the smaller of their
    monthly budget and their funds is at least `min_monthly` (Flattr's `no_means` otherwise)."""
    row = conn.execute(
        select(users.c.budget, accounts.c.balance)
        .join(accounts, and_(accounts.c.user_id == users.c.id, accounts.c.kind == "funds"))
        .where(users.c.id == uid)).first()
    return row is not None and min(row.budget or 0, row.balance) >= config.min_monthly
