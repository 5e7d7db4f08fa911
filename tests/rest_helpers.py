"""Helpers for the REST API tests: members with money, and access tokens granted through the
OAuth provider's own functions (the HTTP flow itself is tested in test_oauth_provider.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from base.config import Settings
from base.tables.members import logins
from catalog.things import WEB, create_thing
from catalog.urls import normalise, site_of
from ledger import accounts
from ledger.events import NormalisedEvent
from ledger.identities import link
from ledger.ingest import ingest
from ledger.sql import utcnow
from members.apps import exchange_code, issue_code, register_app

ALL_SCOPES = ("flattr", "thing", "extendedread", "email")
REPO = "https://github.com/bo/tool"


def member(engine: Engine, config: Settings, name: str, *, budget: int | None = 500,
           funds: int = 2000) -> int:
    """A member with an e-mail address (and no password: no argon2 hashing to wait for), a
    budget and funds."""
    with engine.begin() as conn:
        uid = accounts.create_user(conn, name)
        conn.execute(logins.insert().values(user_id=uid, email=f"{name}@example.org",
                                            created_at=utcnow()))
        if budget is not None:
            accounts.set_budget(conn, uid, budget, config.money)
        if funds:
            accounts.credit_funds(conn, uid, funds, "test", f"test:{name}")
    return uid


def token(engine: Engine, uid: int, scopes: tuple[str, ...] = ALL_SCOPES) -> str:
    with engine.begin() as conn:
        new = register_app(conn, uid, "test app", "https://app.example/callback")
        code = issue_code(conn, new.app.id, uid, scopes, None)
        granted = exchange_code(conn, new.app, code, None)
    assert not isinstance(granted, Exception)
    return granted.access_token


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def thing(engine: Engine, owner_uid: int, url: str, **details: Any) -> int:
    """The thing of `url`, registered by the member who claimed its site (as a proof would)."""
    with engine.begin() as conn:
        claim_site(conn, owner_uid, url)
        return create_thing(conn, owner_uid, url, **details)


def claim_site(conn: Connection, uid: int, url: str) -> None:
    """Claim the site of `url` for `uid`, as members.sites.record_proof does once proved."""
    link(conn, uid, WEB, site_of(normalise(url)), claim=True)


def a_github_repository_of_bo(engine: Engine, bo: int) -> None:
    """bo's repository, known to the hub from a star its GitHub connector recorded."""
    with engine.begin() as conn:
        link(conn, bo, "github", "2", claim=True)
        star_giver = accounts.create_user(conn, "stargazer")
        link(conn, star_giver, "github", "3")
        ingest(conn, [NormalisedEvent(
            event_id="delivery-1", platform="github", kind="like", actor_id="3",
            content_id="42", owner_id="2", occurred_at=datetime.now(UTC), url=REPO,
            title="bo/tool")])
