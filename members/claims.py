"""Claiming a platform identity: the one way a member comes to own what an identity owns.

`claim_identity` links the identity to the member (their likes there become flattrs) and claims
it (things it owns pay them from then on); a new claim records, in the same transaction, the
"someone you pledged to joined" notices for the givers whose flattrs wait for it
(`notifications.outbox.identity_claimed`). Every way of claiming goes through it: OAuth linking
(`members.linking`), a web site's proof (`members.sites`), and the operator's commands
(`flattr-hub link --claim`, `flattr-hub connectors link`).

An identity another member has claimed opens a claim contest (`open_contest`; the proofs: OAuth,
a site's token), which changes nothing else and which an operator resolves
(`members.contests`); with `contest=False` (an operator's command) it is refused instead. One
that nobody else claimed but another member linked is refused (LedgerError). An awarded
contest moves the claim (`award`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from base.tables.connectors import poll_accounts
from base.tables.linking import claim_contests
from ledger.errors import LedgerError
from ledger.identities import identity_id, link
from ledger.schema import identities, settlement_runs
from ledger.sql import utcnow
from notifications.outbox import identity_claimed


@dataclass(frozen=True)
class Claim:
    """What `claim_identity` did: the identity, whether this call made the member its claimant
    (and told its givers), or the contest it opened instead."""

    identity_id: int
    claimed: bool
    contest_id: int | None


def claim_identity(conn: Connection, uid: int, platform: str, platform_user_id: str, *,
                   contest: bool = True) -> Claim:
    """Link identity (platform, platform_user_id) to `uid` and claim it, telling the waiting
    givers when the claim is new (see the module). A member linking it again keeps their
    "my likes become flattrs" switch. Claimed by another member: a contest (`contest`), else
    LedgerError; else linked by another member: LedgerError."""
    iid = identity_id(conn, platform, platform_user_id)
    row = conn.execute(select(identities.c.linked_user_id, identities.c.claimed_by,
                              identities.c.flattr_enabled)
                       .where(identities.c.id == iid).with_for_update()).one()
    if row.claimed_by not in (None, uid):
        if not contest:
            raise LedgerError(f"{platform} identity {platform_user_id} is claimed by another "
                              "user")
        return Claim(iid, False, open_contest(conn, iid, uid, row.claimed_by))
    if row.linked_user_id not in (None, uid):
        raise LedgerError(f"{platform} identity {platform_user_id} is linked to another user")
    link(conn, uid, platform, platform_user_id, claim=True,
         flattr_enabled=row.flattr_enabled if row.linked_user_id == uid else True)
    if row.claimed_by is None:
        identity_claimed(conn, iid, uid)
    return Claim(iid, row.claimed_by is None, None)


def open_contest(conn: Connection, iid: int, claimant_id: int, holder_id: int) -> int:
    """Open a contest of `holder_id`'s claim of identity `iid` by `claimant_id` (or return the
    one already open)."""
    found = conn.execute(select(claim_contests.c.id).where(
        claim_contests.c.identity_id == iid, claim_contests.c.claimant_id == claimant_id,
        claim_contests.c.state == "open")).scalar()
    if found is not None:
        return found
    return conn.execute(insert(claim_contests).values(
        identity_id=iid, claimant_id=claimant_id, holder_id=holder_id, state="open",
        opened_at=utcnow()).returning(claim_contests.c.id)).scalar_one()


def award(conn: Connection, iid: int, claimant_id: int) -> None:
    """Move the claim of identity `iid` to `claimant_id` (an operator awarded a contest): the
    former holder's link and stored tokens go, the givers are told as for any new claim.
    LedgerError while a settlement run is in progress, so a run sees one owner per identity."""
    if conn.execute(select(settlement_runs.c.month)
                    .where(settlement_runs.c.state == "running")).first() is not None:
        raise LedgerError("a settlement run is in progress; resolve this after it has finished")
    identity = conn.execute(select(identities).where(identities.c.id == iid)
                            .with_for_update()).one()
    values: dict[str, object] = {"claimed_by": claimant_id, "claimed_at": utcnow()}
    if identity.linked_user_id not in (None, claimant_id):
        values["linked_user_id"] = None
        conn.execute(delete(poll_accounts).where(
            poll_accounts.c.platform == identity.platform,
            poll_accounts.c.platform_user_id == identity.platform_user_id))
    conn.execute(update(identities).where(identities.c.id == iid).values(**values))
    identity_claimed(conn, iid, claimant_id)
