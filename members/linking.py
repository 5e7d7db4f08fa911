"""What a proven platform identity does for a member, and undoing it.

- **Starting** (`start`) an authorisation: OAuth 2 (`members.oauth`), or Flickr's OAuth 1.0a
  (`members.oauth1`); `complete` finishes either with the callback's answer.
- **Linking** (`attach`) links the identity to the member (their likes there become flattrs,
  switchable per account) and claims it (things it owns pay them) with
  `members.claims.claim_identity`, and stores the tokens for the platform's poller (X,
  SoundCloud, Mastodon, Flickr), sealed. An identity linked by another member is refused; one
  claimed by another member opens a claim contest (`members.contests`) and changes nothing
  else. A new claim records the "someone you pledged to joined" notices. `link_account` does
  the same for an operator who holds an account's tokens.
- **Logging in** (`sign_in`) with an identity signs in the member who linked it (refreshing its
  link and tokens), or signs up a new member named after the platform user name.
- **Unlinking** (`unlink`) ends the link: the account's likes stop becoming flattrs and its
  poller account and stored tokens are deleted. The claim stays: what it owns keeps paying the
  member (flattrs already recorded, pledges waiting for it), and nobody else can claim it
  without a contest. Flattrs already made from the account are kept and settle as usual.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Connection, Row, and_, delete, select, update

from base.config import Settings
from base.tables.connectors import poll_accounts
from base.vault import Vault, vault
from catalog.things import PLATFORM as BUTTON_PLATFORM
from connectors.poll_storage import store_account
from ledger.errors import NotFound
from ledger.identities import identity_id
from ledger.schema import identities, users
from members import oauth1
from members.claims import Claim, claim_identity
from members.contests import contests
from members.logins import ensure_login, sign_up_linked
from members.oauth import (
    PROVIDERS,
    OAuthError,
    Proof,
    begin,
    credentials,
    prove,
    provider,
    take,
)

NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]")
P = ParamSpec("P")
T = TypeVar("T")


class Run(Protocol):
    """Runs `fn(conn, *args, **kwargs)` in one transaction (`hub.web.session.call`)."""

    async def __call__(self, fn: Callable[Concatenate[Connection, P], T], /,
                       *args: P.args, **kwargs: P.kwargs) -> T: ...


@dataclass(frozen=True)
class Completed:
    """A finished authorisation: what it was for, the member, and what linking did."""

    purpose: str
    user_id: int
    attached: Claim


async def start(run: Run, config: Settings, platform: str, purpose: str,
                user_id: int | None, redirect_uri: str,
                instance: str = "") -> tuple[str, str]:
    """Begin linking (or logging in with) `platform`: (the platform's authorize URL, the state
    its callback brings back). `run(fn, *args)` runs `fn(conn, *args)` in a transaction."""
    if provider(config, platform).oauth.protocol == "oauth1":
        return await oauth1.begin(run, config, platform, purpose, user_id, redirect_uri)
    return await run(begin, config, platform, purpose, user_id, redirect_uri, instance)


async def complete(run: Run, config: Settings,
                   platform: str, state: str, code: str, error: str,
                   member_id: int | None) -> Completed:
    """Finish the authorisation `state` that came back with `code` (or `error`):
    `run(fn, *args)` runs `fn(conn, *args)` in a transaction. The pending authorisation is used
    up whatever happens; a link must come back to the member who started it."""
    pending = await run(take, config, platform, state)
    if error or not code:
        raise OAuthError(f"{PROVIDERS[platform].label} did not authorise the hub "
                         f"({(error or 'no code')[:40]}); nothing was changed.")
    if pending.purpose == "link" and pending.user_id != member_id:
        raise OAuthError("This link was started by another session. Log in and start again.")
    if PROVIDERS[platform].oauth.protocol == "oauth1":
        proof = await oauth1.prove(config, pending, state, code)
    else:
        proof = await prove(config, pending, await run(credentials, config, pending), code)
    if pending.user_id is not None:  # a link: the table ties a user to purpose "link"
        return Completed("link", pending.user_id,
                         await run(attach, config, pending.user_id, proof))
    uid, attached = await run(sign_in, config, proof)
    return Completed("login", uid, attached)


def attach(conn: Connection, config: Settings, uid: int, proof: Proof) -> Claim:
    """Link and claim the proven identity for `uid` (see the module). OAuthError (409) when
    another member has linked it, whoever claimed it: they proved the same account."""
    iid = identity_id(conn, proof.platform, proof.platform_user_id)
    linked = conn.execute(select(identities.c.linked_user_id)
                          .where(identities.c.id == iid).with_for_update()).scalar()
    if linked not in (None, uid):
        raise OAuthError(f"The {PROVIDERS[proof.platform].label} account {proof.username} is "
                         "linked to another member of this hub. If it is yours, ask an operator "
                         "for help.", 409)
    claim = claim_identity(conn, uid, proof.platform, proof.platform_user_id)
    if claim.contest_id is not None:
        return claim
    conn.execute(update(identities).where(identities.c.id == claim.identity_id)
                 .values(username=proof.username[:255]))
    if PROVIDERS[proof.platform].polled:
        store_account(conn, proof.platform, proof.platform_user_id, vault=vault(config),
                      remote_id=proof.remote_id, access_token=proof.access_token,
                      refresh_token=proof.refresh_token, expires_at=proof.expires_at,
                      token_secret=proof.token_secret, instance=proof.instance,
                      poll_seconds=config.connectors[proof.platform].poll_seconds)
    return claim


def link_account(conn: Connection, uid: int, platform: str, platform_user_id: str, *,
                 vault: Vault, remote_id: str | None = None, access_token: str,
                 refresh_token: str | None = None, expires_at: datetime | None = None,
                 token_secret: str | None = None, instance: str = "", poll_seconds: int = 900,
                 now: datetime | None = None) -> int:
    """What linking a polled account does, for an operator who holds its tokens (`flattr-hub
    connectors link`): claim it for `uid` (`claim_identity`; LedgerError when another member
    holds it) and store its tokens for the poller. Returns its poll account's id."""
    claim_identity(conn, uid, platform, platform_user_id, contest=False)
    return store_account(conn, platform, platform_user_id, vault=vault, remote_id=remote_id,
                         access_token=access_token, refresh_token=refresh_token,
                         expires_at=expires_at, token_secret=token_secret, instance=instance,
                         poll_seconds=poll_seconds, now=now)


def sign_in(conn: Connection, config: Settings, proof: Proof) -> tuple[int, Claim]:
    """(the member to sign in, what linking did): the member who linked the identity, else a
    new member. OAuthError (409) when a member claimed it without linking it: they should log
    in with their password and link it."""
    row = conn.execute(select(identities.c.linked_user_id, identities.c.claimed_by).where(
        identities.c.platform == proof.platform,
        identities.c.platform_user_id == proof.platform_user_id)).first()
    if row is not None and row.linked_user_id is not None:
        uid = row.linked_user_id
        ensure_login(conn, uid)
    elif row is not None and row.claimed_by is not None:
        raise OAuthError(f"This {PROVIDERS[proof.platform].label} account belongs to a member "
                         "who has not turned on logging in with it. Log in with your name and "
                         "password, then link it under Linked accounts.", 409)
    else:
        uid = sign_up_linked(conn, _free_name(conn, proof.username, proof.platform))
    return uid, attach(conn, config, uid, proof)


def unlink(conn: Connection, uid: int, iid: int) -> None:
    """End `uid`'s link of identity `iid` (see the module); NotFound unless they linked it."""
    row = conn.execute(select(identities.c.platform, identities.c.platform_user_id).where(
        identities.c.id == iid, identities.c.linked_user_id == uid).with_for_update()).first()
    if row is None:
        raise NotFound("no such linked account")
    conn.execute(update(identities).where(identities.c.id == iid).values(linked_user_id=None))
    conn.execute(delete(poll_accounts).where(
        poll_accounts.c.platform == row.platform,
        poll_accounts.c.platform_user_id == row.platform_user_id))


def overview(conn: Connection, uid: int) -> tuple[list[Row], list[Row]]:
    """(`linked_accounts`, the claim contests `uid` opened) for the linked accounts page."""
    return linked_accounts(conn, uid), contests(conn, claimant_id=uid)


def linked_accounts(conn: Connection, uid: int) -> list[Row]:
    """The identities `uid` has linked or claimed: `id, platform, platform_user_id, username,
    linked, claimed, flattr_enabled, poll_state` (None when nothing polls it)."""
    return list(conn.execute(
        select(identities.c.id, identities.c.platform, identities.c.platform_user_id,
               identities.c.username, (identities.c.linked_user_id == uid).label("linked"),
               (identities.c.claimed_by == uid).label("claimed"), identities.c.flattr_enabled,
               poll_accounts.c.state.label("poll_state"))
        .outerjoin(poll_accounts, and_(
            poll_accounts.c.platform == identities.c.platform,
            poll_accounts.c.platform_user_id == identities.c.platform_user_id))
        .where((identities.c.linked_user_id == uid) | (identities.c.claimed_by == uid),
               identities.c.platform != BUTTON_PLATFORM)  # the member's own, not an account
        .order_by(identities.c.platform, identities.c.platform_user_id)))


def _free_name(conn: Connection, wanted: str, platform: str) -> str:
    """A user name not taken yet, made from the platform user name."""
    base = NAME_CHARACTERS.sub("", wanted)[:56].lstrip("._-") or platform
    name, n = base, 1
    while conn.execute(select(users.c.id).where(users.c.name == name)).first() is not None:
        n += 1
        name = f"{base}-{n}"
    return name
