"""Platform identities: linking one to a user (their likes become flattrs) and claiming one
(things it owns pay that user)."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from ledger.errors import LedgerError, NotFound
from ledger.schema import identities
from ledger.sql import dialect_insert, utcnow


def identity_id(conn: Connection, platform: str, platform_user_id: str) -> int:
    """The id of identity (platform, platform_user_id), created unlinked on first sight."""
    conn.execute(
        dialect_insert(conn, identities)
        .values(platform=platform, platform_user_id=platform_user_id)
        .on_conflict_do_nothing(index_elements=["platform", "platform_user_id"])
    )
    return conn.execute(
        select(identities.c.id).where(
            identities.c.platform == platform, identities.c.platform_user_id == platform_user_id
        )
    ).scalar_one()


def claimed_by(conn: Connection, iid: int) -> int | None:
    """The user who claimed identity `iid`, or None."""
    return conn.execute(select(identities.c.claimed_by).where(identities.c.id == iid)).scalar()


def link(conn: Connection, uid: int, platform: str, platform_user_id: str, *,
         claim: bool = False, flattr_enabled: bool = True) -> int:
    """Link the identity to user `uid` (its likes become that user's flattrs) and, with `claim`,
    claim it (things it owns pay `uid`). Refuses an identity linked or claimed by someone else."""
    if not platform or not platform_user_id:
        raise LedgerError("platform and platform user id must not be empty")
    iid = identity_id(conn, platform, platform_user_id)
    row = conn.execute(
        select(identities.c.linked_user_id, identities.c.claimed_by)
        .where(identities.c.id == iid).with_for_update()
    ).one()
    if row.linked_user_id not in (None, uid):
        raise LedgerError(f"{platform} identity {platform_user_id} is linked to another user")
    if claim and row.claimed_by not in (None, uid):
        raise LedgerError(f"{platform} identity {platform_user_id} is claimed by another user")
    values: dict[str, object] = {"linked_user_id": uid, "flattr_enabled": flattr_enabled}
    if claim and row.claimed_by is None:
        values.update(claimed_by=uid, claimed_at=utcnow())
    conn.execute(update(identities).where(identities.c.id == iid).values(**values))
    return iid


def set_flattr_enabled(conn: Connection, uid: int, iid: int, enabled: bool) -> None:
    """Switch "my likes become flattrs" for one of the user's linked identities."""
    done = conn.execute(
        update(identities)
        .where(identities.c.id == iid, identities.c.linked_user_id == uid)
        .values(flattr_enabled=enabled)
    ).rowcount
    if not done:
        raise NotFound("no such linked identity")
