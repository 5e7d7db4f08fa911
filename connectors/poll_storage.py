"""Poll accounts in the database: their tokens, sealed by the token vault (`base.vault.Vault`)
and opened only to make a request; their schedule and rate window; the items seen so far."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from base.tables.connectors import poll_accounts, poll_seen
from base.vault import Vault
from connectors.poll_types import Account, Item
from ledger.schema import identities as identities_table
from ledger.sql import utcnow


def store_account(conn: Connection, platform: str, platform_user_id: str, *, vault: Vault,
                  remote_id: str | None = None, access_token: str,
                  refresh_token: str | None = None, expires_at: datetime | None = None,
                  token_secret: str | None = None, instance: str = "", poll_seconds: int = 900,
                  now: datetime | None = None) -> int:
    """Store the tokens of `platform_user_id`, sealed by `vault`, for polling (linking and
    claiming the identity is `members.claims`'): its poll account's id. The first poll is
    spread over one poll interval. Storing an account again replaces its tokens and makes it
    active."""
    now = now or utcnow()
    first = now + timedelta(seconds=random.uniform(0, max(1, poll_seconds)))
    values = {"remote_id": remote_id or platform_user_id, "state": "active", "failures": 0,
              "last_error": None, **sealed(vault, access_token, refresh_token, expires_at),
              "token_secret": None if token_secret is None else vault.seal(token_secret)}
    found = conn.execute(select(poll_accounts.c.id).where(
        poll_accounts.c.platform == platform, poll_accounts.c.instance == instance,
        poll_accounts.c.platform_user_id == platform_user_id)).scalar()
    if found is not None:
        conn.execute(update(poll_accounts).where(poll_accounts.c.id == found).values(
            next_poll_at=now, **values))
        return found
    return conn.execute(insert(poll_accounts).values(
        platform=platform, instance=instance, platform_user_id=platform_user_id,
        next_poll_at=first, created_at=now, **values).returning(poll_accounts.c.id)).scalar_one()


def sealed(vault: Vault, access_token: str, refresh_token: str | None,
           expires_at: datetime | None) -> dict[str, Any]:
    """The token columns of `poll_accounts`, the tokens sealed."""
    return {"access_token": vault.seal(access_token),
            "refresh_token": None if refresh_token is None else vault.seal(refresh_token),
            "token_expires_at": expires_at}


def list_accounts(conn: Connection, platform: str | None = None) -> list[Any]:
    """Linked poll accounts (of one platform, or all) with their poll state, oldest first."""
    query = select(poll_accounts.c.id, poll_accounts.c.platform, poll_accounts.c.instance,
                   poll_accounts.c.platform_user_id, poll_accounts.c.state,
                   poll_accounts.c.next_poll_at, poll_accounts.c.last_polled_at,
                   poll_accounts.c.last_error).order_by(poll_accounts.c.id)
    if platform:
        query = query.where(poll_accounts.c.platform == platform)
    return list(conn.execute(query))


def load_account(conn: Connection, account_id: int,
                 vault: Vault) -> tuple[Account | None, bool]:
    """(the account if it is active, whether its identity has flattring on). ValueError when
    `vault` cannot open its tokens."""
    row = conn.execute(
        select(poll_accounts, identities_table.c.flattr_enabled)
        .join(identities_table, (identities_table.c.platform == poll_accounts.c.platform)
              & (identities_table.c.platform_user_id == poll_accounts.c.platform_user_id))
        .where(poll_accounts.c.id == account_id, poll_accounts.c.state == "active")).first()
    if row is None:
        return None, False
    refresh = None if row.refresh_token is None else vault.open(row.refresh_token)
    secret = None if row.token_secret is None else vault.open(row.token_secret)
    return Account(row.id, row.platform, row.instance, row.platform_user_id, row.remote_id,
                   vault.open(row.access_token), refresh, row.window_started_at,
                   row.window_requests, row.baseline_done, row.failures, row.last_polled_at,
                   secret), row.flattr_enabled


def seen_items(conn: Connection, account_id: int) -> dict[str, Item]:
    rows = conn.execute(select(poll_seen).where(poll_seen.c.account_id == account_id))
    return {r.content_id: Item(r.content_id, r.owner_id, r.url, r.title) for r in rows}


def set_account(conn: Connection, account_id: int, **values: Any) -> None:
    conn.execute(update(poll_accounts).where(poll_accounts.c.id == account_id).values(**values))


def record_seen(conn: Connection, account_id: int, new: Sequence[Item], gone: Sequence[Item],
                now: datetime) -> None:
    """Store the items first seen at `now` and forget the ones gone."""
    if new:
        conn.execute(insert(poll_seen), [
            {"account_id": account_id, "content_id": i.content_id, "owner_id": i.owner_id,
             "url": i.url, "title": i.title, "first_seen_at": now} for i in new])
    for chunk in range(0, len(gone), 500):
        conn.execute(delete(poll_seen).where(
            poll_seen.c.account_id == account_id,
            poll_seen.c.content_id.in_([i.content_id for i in gone[chunk:chunk + 500]])))
