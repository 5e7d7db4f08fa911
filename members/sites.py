"""Claiming a web site: the identity ("web", host name). A member asks to claim a host and gets a
token; once the token is found on the site (`members.site_proof`), the identity is claimed for
them (`members.claims.claim_identity`) and what waits for it pays them from then on. When
another member holds the site already, the proof opens a claim contest (`members.contests`)
for an operator to resolve.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog
from sqlalchemy import Connection, Engine, and_, select, update

from base.config import Settings
from base.tables.sites import site_claims
from ledger.errors import LedgerError, NotFound
from ledger.schema import identities as identities_table
from ledger.schema import users
from ledger.sql import dialect_insert, utcnow
from members.claims import claim_identity
from members.site_proof import ProofSettings, find_proof

PLATFORM = "web"
LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOST = re.compile(rf"^(?=.{{1,253}}$){LABEL}(\.{LABEL})+$")
TOKEN_BYTES = 24

log = structlog.get_logger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class SiteClaim:
    host: str
    token: str
    created_at: datetime
    verified_at: datetime | None  # when the token was found on the site
    holder: str | None  # who has claimed the site now
    mine: bool  # the site is claimed by the member whose claim this is


class ProofMissing(LedgerError):
    """No method found the token of `claim`; `reasons` says what each one saw."""

    def __init__(self, claim: SiteClaim, reasons: list[str]) -> None:
        super().__init__("the verification token was not found on the site")
        self.claim = claim
        self.reasons = reasons


def normalise_host(text: str) -> str:
    """The host name in `text` (a host or a URL), lower case and in ASCII (IDNA); LedgerError
    when it is not a host name (an IP address, a port, a single label)."""
    value = text.strip().lower()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = re.split(r"[/?#]", value, maxsplit=1)[0].rstrip(".")
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        pass
    else:
        raise LedgerError("give the site's host name, not an IP address")
    if ":" in value or "@" in value:
        raise LedgerError("give the site's host name only, without a port or user name")
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError:
        raise LedgerError("that is not a host name") from None
    if not HOST.match(value):
        raise LedgerError("that is not a host name, such as example.org")
    return value


def request_claim(conn: Connection, uid: int, host_text: str) -> SiteClaim:
    """Start (or find again) user `uid`'s claim of the site `host_text`, with its token.
    LedgerError when the host is malformed or the site is theirs already. A site another
    member holds may be claimed too: proving it opens a claim contest."""
    host = normalise_host(host_text)
    holder = conn.execute(select(identities_table.c.claimed_by).where(
        identities_table.c.platform == PLATFORM,
        identities_table.c.platform_user_id == host)).scalar()
    if holder == uid:
        raise LedgerError(f"{host} is already yours")
    conn.execute(dialect_insert(conn, site_claims).values(
        user_id=uid, host=host, token=secrets.token_urlsafe(TOKEN_BYTES), created_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["user_id", "host"]))
    return site_claim(conn, uid, host)


def _claims(uid: int) -> Any:
    holder = users.alias("holder")
    return (
        select(site_claims.c.host, site_claims.c.token, site_claims.c.created_at,
               site_claims.c.verified_at, holder.c.name.label("holder"),
               (identities_table.c.claimed_by == uid).label("mine"))
        .select_from(site_claims.outerjoin(identities_table, and_(
            identities_table.c.platform == PLATFORM,
            identities_table.c.platform_user_id == site_claims.c.host))
            .outerjoin(holder, holder.c.id == identities_table.c.claimed_by))
        .where(site_claims.c.user_id == uid))


def _site_claim(row: Any) -> SiteClaim:
    return SiteClaim(row.host, row.token, row.created_at, row.verified_at, row.holder,
                     bool(row.mine))


def site_claim(conn: Connection, uid: int, host: str) -> SiteClaim:
    """User `uid`'s claim of `host`; NotFound when they have not asked to claim it."""
    row = conn.execute(_claims(uid).where(site_claims.c.host == host)).first()
    if row is None:
        raise NotFound(f"you have not asked to claim {host}")
    return _site_claim(row)


def site_claims_of(conn: Connection, uid: int) -> list[SiteClaim]:
    """Every site user `uid` has asked to claim, newest first."""
    return [_site_claim(row) for row in conn.execute(
        _claims(uid).order_by(site_claims.c.created_at.desc(), site_claims.c.id.desc()))]


def record_proof(conn: Connection, uid: int, host: str) -> SiteClaim:
    """The token was found: claim the identity ("web", host) for `uid`, or, when another
    member holds it, open a claim contest that an operator resolves (`members.claims`)."""
    claim_identity(conn, uid, PLATFORM, host)
    conn.execute(update(site_claims)
                 .where(site_claims.c.user_id == uid, site_claims.c.host == host,
                        site_claims.c.verified_at.is_(None))
                 .values(verified_at=utcnow()))
    return site_claim(conn, uid, host)


async def verify_site(engine: Engine, config: Settings, uid: int,
                      host: str) -> SiteClaim:
    """Look for the token of `uid`'s claim of `host` on the site and, when it is there, claim
    the site for them (or open a claim contest, see `record_proof`). NotFound: no such claim;
    ProofMissing: the token is not on the site."""
    try:
        host = normalise_host(host)
    except LedgerError:
        raise NotFound(f"you have not asked to claim {host}") from None
    claim = await _run(engine, site_claim, uid, host)
    if claim.mine:
        return claim
    outcome = await find_proof(ProofSettings.from_config(config), claim.host, claim.token)
    if outcome.method is None:
        raise ProofMissing(claim, outcome.reasons)
    claimed = await _run(engine, record_proof, uid, host)
    log.info("site_proved", host=host, user_id=uid, method=outcome.method,
             claimed=claimed.mine)
    return claimed


async def _run(engine: Engine, fn: Callable[Concatenate[Connection, P], T],
               *args: P.args, **kwargs: P.kwargs) -> T:
    def run() -> T:
        with engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    return await asyncio.to_thread(run)
