"""Lists of flattrs for the API: those a user gave, those of a thing, those a user received
(of things whose owner identity they claimed), newest first, retracted ones left out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select

from ledger.schema import flattrs, identities, things, users


@dataclass(frozen=True)
class FlattrEntry:
    id: int
    thing_id: int
    giver: str
    occurred_at: datetime


def given_by(conn: Connection, uid: int, page: int, count: int) -> list[FlattrEntry]:
    return _page(conn, _entries().where(flattrs.c.giver_id == uid), page, count)


def of_thing(conn: Connection, thing_id: int, page: int, count: int) -> list[FlattrEntry]:
    return _page(conn, _entries().where(flattrs.c.thing_id == thing_id), page, count)


def received_by(conn: Connection, uid: int, page: int, count: int) -> list[FlattrEntry]:
    owned = (select(things.c.id).join(identities, identities.c.id == things.c.owner_identity_id)
             .where(identities.c.claimed_by == uid))
    return _page(conn, _entries().where(flattrs.c.thing_id.in_(owned)), page, count)


def _entries() -> Select[Any]:
    return (select(flattrs.c.id, flattrs.c.thing_id, users.c.name, flattrs.c.occurred_at)
            .join(users, users.c.id == flattrs.c.giver_id)
            .where(flattrs.c.retracted_at.is_(None)))


def _page(conn: Connection, query: Select[Any], page: int, count: int) -> list[FlattrEntry]:
    rows = conn.execute(query.order_by(flattrs.c.occurred_at.desc(), flattrs.c.id.desc())
                        .limit(count).offset((page - 1) * count)).all()
    return [FlattrEntry(*row) for row in rows]
