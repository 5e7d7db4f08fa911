"""Linking a Bluesky account by proving it: the member names their handle (or DID), the hub
resolves the handle to a DID and gives them a code; once the code is in the account's profile
description (read from the public AppView, `app.bsky.actor.getProfile`), the DID is linked to
them (its likes become their flattrs) and claimed (likes of its posts pay them).

A handle is resolved as AT Protocol says: a DNS TXT record `_atproto.<handle>` holding
`did=<DID>`, else `https://<handle>/.well-known/atproto-did`. The handle is a domain the
member names, so both go the way site claims go (`members.site_proof`: the same DNS servers,
the public-address guard, a timeout and a cap on the bytes read). The AppView is the
operator's (`connectors.bluesky.appview_url`). An identity linked by another member is
refused; one claimed by another member opens a claim contest.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import aiohttp
import orjson
import structlog
from sqlalchemy import Connection, Engine, select, update
from yarl import URL

from base.config import Settings
from base.public_net_aiohttp import guarded_connector
from base.tables.bluesky import bluesky_claims
from connectors.bluesky import DID
from connectors.bluesky import PLATFORM_NAME as PLATFORM
from ledger import identities
from ledger.errors import LedgerError, NotFound
from ledger.schema import identities as identities_table
from ledger.sql import dialect_insert, utcnow
from members.claims import claim_identity
from members.site_proof import (
    ProofSettings,
    Refused,
    dns_resolver,
    fetch_text,
    lookup,
    page_url,
)

LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HANDLE = re.compile(rf"^(?=.{{1,253}}$){LABEL}(\.{LABEL})*\.[a-z][a-z0-9-]{{0,62}}$")
CODE_PREFIX = "flattr-"
MAX_PROFILE_BYTES = 65536

log = structlog.get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Claim:
    did: str
    handle: str
    code: str
    created_at: datetime
    verified_at: datetime | None
    mine: bool  # the DID is linked to the member whose claim this is


class NotProved(LedgerError):
    """The code is not in the profile; the message says what was found."""


def parse_account(text: str) -> tuple[str, str]:
    """("did", DID) or ("handle", handle) for what a member typed (`@` and `at://` allowed);
    LedgerError when it is neither."""
    value = text.strip()
    value = value.removeprefix("at://").removeprefix("@").rstrip("/")
    if value.startswith("did:"):
        if len(value) > 255 or not DID.match(value):
            raise LedgerError("that is not a Bluesky DID (did:plc:… or did:web:…)")
        return "did", value
    value = value.lower()
    if not HANDLE.match(value):
        raise LedgerError("that is not a Bluesky handle, such as alice.bsky.social")
    return "handle", value


async def resolve_handle(config: Settings, handle: str) -> str:
    """The DID `handle` names (DNS TXT `_atproto.<handle>`, then the well-known file);
    LedgerError saying why when neither gives one."""
    settings = ProofSettings.from_config(config)
    reasons = []
    try:
        for record in await lookup(dns_resolver(settings), f"_atproto.{handle}", "TXT"):
            text = b"".join(record.strings).decode("utf-8", "replace").strip()
            if text.startswith("did=") and DID.match(text[4:]) and len(text) <= 259:
                return text[4:]
        reasons.append("no DNS TXT record _atproto." + handle)
    except Refused as exc:
        reasons.append(f"DNS: {exc}")
    connector = guarded_connector(settings.guard(), force_close=True, limit=2)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=settings.timeout)
                                     ) as session:
        try:
            text = (await fetch_text(session, settings,
                                 page_url(settings, handle, "/.well-known/atproto-did"))).strip()
            if DID.match(text) and len(text) <= 255:
                return text
            reasons.append("/.well-known/atproto-did holds no DID")
        except Refused as exc:
            reasons.append(f"/.well-known/atproto-did: {exc}")
    raise LedgerError(f"{handle} does not resolve to a DID ({'; '.join(reasons)})")


async def account_did(config: Settings, text: str) -> tuple[str, str]:
    """(DID, handle or "") of what a member typed."""
    kind, value = parse_account(text)
    if kind == "did":
        return value, ""
    return await resolve_handle(config, value), value


def request_claim(conn: Connection, uid: int, did: str, handle: str) -> Claim:
    """Start (or find again) `uid`'s claim of `did`, with its code. LedgerError when it is
    theirs already."""
    linked = conn.execute(select(identities_table.c.linked_user_id).where(
        identities_table.c.platform == PLATFORM,
        identities_table.c.platform_user_id == did)).scalar()
    if linked == uid:
        raise LedgerError(f"{handle or did} is already linked to you")
    conn.execute(dialect_insert(conn, bluesky_claims).values(
        user_id=uid, did=did, handle=handle[:253], created_at=utcnow(),
        code=CODE_PREFIX + secrets.token_urlsafe(12),
    ).on_conflict_do_nothing(index_elements=["user_id", "did"]))
    return claim_of(conn, uid, did)


def _claims(uid: int) -> Any:
    return (select(bluesky_claims.c.did, bluesky_claims.c.handle, bluesky_claims.c.code,
                   bluesky_claims.c.created_at, bluesky_claims.c.verified_at,
                   (identities_table.c.linked_user_id == uid).label("mine"))
            .select_from(bluesky_claims.outerjoin(identities_table, (
                identities_table.c.platform == PLATFORM)
                & (identities_table.c.platform_user_id == bluesky_claims.c.did)))
            .where(bluesky_claims.c.user_id == uid))


def _claim(row: Any) -> Claim:
    return Claim(row.did, row.handle, row.code, row.created_at, row.verified_at,
                 bool(row.mine))


def claim_of(conn: Connection, uid: int, did: str) -> Claim:
    """`uid`'s claim of `did`; NotFound when they have not asked to link it."""
    row = conn.execute(_claims(uid).where(bluesky_claims.c.did == did)).first()
    if row is None:
        raise NotFound("you have not asked to link that Bluesky account")
    return _claim(row)


def claims_of(conn: Connection, uid: int) -> list[Claim]:
    """Every Bluesky account `uid` has asked to link, newest first."""
    return [_claim(row) for row in conn.execute(
        _claims(uid).order_by(bluesky_claims.c.created_at.desc(), bluesky_claims.c.id.desc()))]


def link_account(conn: Connection, uid: int, did: str, handle: str) -> bool:
    """Link and claim `did` for `uid` (`members.claims.claim_identity`); whether it is theirs now
    (False: another member had claimed it, and a claim contest was opened). LedgerError when
    another member linked it."""
    iid = identities.identity_id(conn, PLATFORM, did)
    linked = conn.execute(select(identities_table.c.linked_user_id)
                          .where(identities_table.c.id == iid).with_for_update()).scalar()
    if linked not in (None, uid):
        raise LedgerError("that Bluesky account is linked to another member of this hub")
    if claim_identity(conn, uid, PLATFORM, did).contest_id is not None:
        return False
    if handle:
        conn.execute(update(identities_table).where(identities_table.c.id == iid)
                     .values(username=handle[:255]))
    return True


def record_proof(conn: Connection, uid: int, did: str, handle: str) -> Claim:
    link_account(conn, uid, did, handle)
    conn.execute(update(bluesky_claims).where(
        bluesky_claims.c.user_id == uid, bluesky_claims.c.did == did,
        bluesky_claims.c.verified_at.is_(None)).values(verified_at=utcnow()))
    return claim_of(conn, uid, did)


async def profile(config: Settings, did: str) -> Mapping[str, Any]:
    """The public profile of `did` from the AppView; LedgerError when it cannot be had."""
    section = config.connectors["bluesky"]
    url = URL(section.appview_url.rstrip("/") + "/xrpc/app.bsky.actor.getProfile")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
                total=section.timeout_seconds)) as session, session.get(
                url.with_query(actor=did), allow_redirects=False) as reply:
            if reply.status != 200:
                raise LedgerError(f"Bluesky did not show the profile (HTTP {reply.status})")
            body = await reply.content.read(MAX_PROFILE_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError, OSError):
        raise LedgerError("Bluesky could not be reached; try again later") from None
    try:
        found = orjson.loads(body) if len(body) <= MAX_PROFILE_BYTES else None
    except orjson.JSONDecodeError:
        found = None
    if not isinstance(found, Mapping) or found.get("did") != did:
        raise LedgerError("Bluesky answered with something that is not that profile")
    return found


async def verify(engine: Engine, config: Settings, uid: int, did: str) -> Claim:
    """Look for the code of `uid`'s claim of `did` in the account's profile description and,
    when it is there, link the account to them. NotFound: no such claim; NotProved: the code
    is not there; LedgerError: another member linked it."""
    claim = await _run(engine, claim_of, uid, did)
    if claim.mine:
        return claim
    shown = await profile(config, did)
    description = shown.get("description")
    words = description.split() if isinstance(description, str) else []
    if not any(secrets.compare_digest(word.encode(), claim.code.encode()) for word in words):
        raise NotProved(f"the code {claim.code} is not in the profile description yet")
    handle = shown.get("handle") if isinstance(shown.get("handle"), str) else claim.handle
    proved = await _run(engine, record_proof, uid, did, str(handle or "")[:253])
    log.info("bluesky_proved", user_id=uid, linked=proved.mine)
    return proved


async def _run(engine: Engine, fn: Callable[..., T], *args: Any) -> T:
    def run() -> T:
        with engine.begin() as conn:
            return fn(conn, *args)

    return await asyncio.to_thread(run)
