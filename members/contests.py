"""Claim contests: a member proved (by OAuth, or a site's token) an identity that another
member has claimed; `members.claims` opens them.

Opening one changes nothing else: the claim stays where it is and the claimant is not linked.
An operator then either awards the claim to the claimant — the claim moves (things the
identity owns pay the claimant from the next settlement on: flattrs not yet settled and
waiting pledges follow the claim, settled months stay as they are), the former holder's link
and stored tokens for it are removed, and the claimant is notified like any new claimant — or
rejects the request. Either way who resolved it and when is kept. A contest cannot be awarded
while a settlement run is in progress, so a run sees one owner per identity.
"""

from __future__ import annotations

from sqlalchemy import Connection, Row, select, update

from base.tables.linking import claim_contests
from ledger.errors import LedgerError, NotFound
from ledger.schema import identities, users
from ledger.sql import utcnow
from members import claims


def contests(conn: Connection, *, claimant_id: int | None = None,
             state: str | None = None) -> list[Row]:
    """Contests, newest first, with the identity and the names of the people involved:
    `id, platform, platform_user_id, username, claimant, holder, current_holder, state,
    opened_at, resolved_at, resolved_by`."""
    claimant, holder, current, resolver = (users.alias(name) for name in (
        "claimant", "holder", "current_holder", "resolver"))
    query = (
        select(claim_contests.c.id, identities.c.platform, identities.c.platform_user_id,
               identities.c.username, claimant.c.name.label("claimant"),
               holder.c.name.label("holder"), current.c.name.label("current_holder"),
               claim_contests.c.state, claim_contests.c.opened_at, claim_contests.c.resolved_at,
               resolver.c.name.label("resolved_by"))
        .join(identities, identities.c.id == claim_contests.c.identity_id)
        .join(claimant, claimant.c.id == claim_contests.c.claimant_id)
        .join(holder, holder.c.id == claim_contests.c.holder_id)
        .outerjoin(current, current.c.id == identities.c.claimed_by)
        .outerjoin(resolver, resolver.c.id == claim_contests.c.resolved_by)
        .order_by(claim_contests.c.id.desc()))
    if claimant_id is not None:
        query = query.where(claim_contests.c.claimant_id == claimant_id)
    if state is not None:
        query = query.where(claim_contests.c.state == state)
    return list(conn.execute(query))


def resolve(conn: Connection, contest_id: int, operator_id: int, award: bool) -> None:
    """Award the contested claim to the claimant, or reject the request (see the module)."""
    contest = conn.execute(select(claim_contests).where(claim_contests.c.id == contest_id)
                           .with_for_update()).first()
    if contest is None:
        raise NotFound("no such claim contest")
    if contest.state != "open":
        raise LedgerError(f"claim contest {contest_id} is already {contest.state}")
    if award:
        claims.award(conn, contest.identity_id, contest.claimant_id)
    conn.execute(update(claim_contests).where(claim_contests.c.id == contest_id).values(
        state="awarded" if award else "rejected", resolved_at=utcnow(), resolved_by=operator_id))
