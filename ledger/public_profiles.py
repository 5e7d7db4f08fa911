"""What the public may see of a user: the identities they have claimed, the things those own
(most flattred first) and how many people have flattred them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from ledger.errors import NotFound
from ledger.schema import flattrs, identities, things, users

THINGS_SHOWN = 50


@dataclass(frozen=True)
class Identity:
    platform: str
    platform_user_id: str
    username: str | None


@dataclass(frozen=True)
class Thing:
    platform: str
    content_id: str
    url: str | None
    title: str | None
    flattrs: int


@dataclass(frozen=True)
class PublicProfile:
    name: str
    identities: list[Identity]
    things: list[Thing]
    supporters: int  # distinct users who flattred their things (retracted flattrs left out)


def public_profile(conn: Connection, name: str, limit: int = THINGS_SHOWN) -> PublicProfile:
    """The public profile of user `name`; NotFound when there is no such user."""
    uid = conn.execute(select(users.c.id).where(users.c.name == name)).scalar()
    if uid is None:
        raise NotFound(f"there is no member called {name}")
    claimed = [Identity(r.platform, r.platform_user_id, r.username) for r in conn.execute(
        select(identities.c.platform, identities.c.platform_user_id, identities.c.username)
        .where(identities.c.claimed_by == uid)
        .order_by(identities.c.platform, identities.c.platform_user_id))]
    owned = (things.join(identities, identities.c.id == things.c.owner_identity_id)
             .outerjoin(flattrs, (flattrs.c.thing_id == things.c.id)
                        & flattrs.c.retracted_at.is_(None)))
    made = [Thing(r.platform, r.content_id, r.url, r.title, r.flattrs) for r in conn.execute(
        select(things.c.platform, things.c.content_id, things.c.url, things.c.title,
               func.count(flattrs.c.id).label("flattrs"))
        .select_from(owned).where(identities.c.claimed_by == uid)
        .group_by(things.c.id, things.c.platform, things.c.content_id, things.c.url,
                  things.c.title)
        .order_by(func.count(flattrs.c.id).desc(), things.c.id).limit(limit))]
    supporters = conn.execute(
        select(func.count(func.distinct(flattrs.c.giver_id)))
        .select_from(flattrs.join(things, things.c.id == flattrs.c.thing_id)
                     .join(identities, identities.c.id == things.c.owner_identity_id))
        .where(identities.c.claimed_by == uid, flattrs.c.retracted_at.is_(None),
               flattrs.c.giver_id != uid)
    ).scalar_one()
    return PublicProfile(name, claimed, made, supporters)
