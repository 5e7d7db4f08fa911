"""The OAuth 2.0 provider: members register third-party applications, which ask a member's
consent (authorization code grant, RFC 6749 §4.1) and exchange the code for a Bearer token.

Client secrets, codes and tokens are random, shown once and stored only as SHA-256 hashes.
A code is good for `CODE_SECONDS` and for one exchange; presenting it again revokes the tokens it
gave (RFC 6749 §4.1.2). Tokens do not expire, as Flattr's did not (its clients keep a token
for good and know no refresh), but they are revocable: by the member who authorized the
application (its tokens for them), by the application itself (RFC 7009), and all at once by
deleting the application. Scopes are Flattr's: `flattr`, `thing`, `extendedread`, `email`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Row, delete, select, update

from base.tables.apps import oauth_apps, oauth_codes, oauth_tokens
from ledger.sql import utcnow

SCOPES = ("flattr", "thing", "extendedread", "email")
CODE_SECONDS = 600
MAX_NAME = 100
MAX_URI = 2000

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]+")
CLIENT_ID_MAX = 64


class OAuthError(Exception):
    """A refused OAuth request: `error` is the RFC 6749 code, `description` one line fit for
    the client (never a secret), `status` the HTTP status of the answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


class Redirectable(OAuthError):
    """An authorization error to report to the application through its `redirect_uri`."""

    def __init__(self, error: str, description: str, redirect_uri: str) -> None:
        super().__init__(error, description)
        self.redirect_uri = redirect_uri


@dataclass(frozen=True)
class App:
    id: int
    owner_id: int
    name: str
    client_id: str
    redirect_uri: str
    created_at: datetime


@dataclass(frozen=True)
class NewApp:
    """A just-registered application with its secret, which is never shown again."""

    app: App
    client_secret: str


@dataclass(frozen=True)
class Grant:
    """What a Bearer token allows: acting as `user_id` within `scopes`."""

    user_id: int
    app_id: int
    scopes: frozenset[str]


def hashed(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_app(conn: Connection, owner_uid: int, name: str, redirect_uri: str) -> NewApp:
    """Register an application of member `owner_uid`. OAuthError (invalid_request) when the name
    is empty or too long, or the redirect URI is not an absolute http(s) URL without fragment."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise OAuthError("invalid_request", f"the name must be 1 to {MAX_NAME} characters")
    check_redirect_uri(redirect_uri)
    client_id, secret = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
    now = utcnow()
    app_id = conn.execute(oauth_apps.insert().values(
        owner_id=owner_uid, name=name, client_id=client_id, secret_hash=hashed(secret),
        redirect_uri=redirect_uri, created_at=now).returning(oauth_apps.c.id)).scalar_one()
    return NewApp(App(app_id, owner_uid, name, client_id, redirect_uri, now), secret)


def check_redirect_uri(uri: str) -> None:
    try:
        parts = urlsplit(uri)
    except ValueError:
        parts = None
    if (parts is None or len(uri) > MAX_URI or parts.scheme not in ("http", "https")
            or not parts.hostname or parts.fragment or any(c.isspace() for c in uri)):
        raise OAuthError("invalid_request",
                         "the redirect URI must be an absolute http(s) URL without a fragment")


def apps_of(conn: Connection, owner_uid: int) -> list[App]:
    rows = conn.execute(select(oauth_apps).where(oauth_apps.c.owner_id == owner_uid)
                        .order_by(oauth_apps.c.id)).all()
    return [_app(row) for row in rows]


def delete_app(conn: Connection, owner_uid: int, app_id: int) -> bool:
    """Delete member `owner_uid`'s application with its codes and tokens; False when they have
    no such application."""
    owned = conn.execute(select(oauth_apps.c.id).where(
        oauth_apps.c.id == app_id, oauth_apps.c.owner_id == owner_uid)).first()
    if owned is None:
        return False
    conn.execute(delete(oauth_tokens).where(oauth_tokens.c.app_id == app_id))
    conn.execute(delete(oauth_codes).where(oauth_codes.c.app_id == app_id))
    conn.execute(delete(oauth_apps).where(oauth_apps.c.id == app_id))
    return True


def client(conn: Connection, client_id: str) -> App | None:
    """The application with `client_id`; None for an unknown one, and without asking the
    database for one no application can have (the hub makes them URL-safe and short; a NUL
    byte, which PostgreSQL refuses in a query, can come from any client's Basic header)."""
    if not (0 < len(client_id) <= CLIENT_ID_MAX and CLIENT_ID.fullmatch(client_id)):
        return None
    row = conn.execute(select(oauth_apps).where(oauth_apps.c.client_id == client_id)).first()
    return None if row is None else _app(row)


def parse_scopes(text: str | None) -> tuple[str, ...]:
    """Scopes separated by spaces (RFC 6749) or commas (as Flattr's client libraries wrote
    them), in canonical order; OAuthError invalid_scope naming an unknown one."""
    asked = set((text or "").replace(",", " ").split())
    unknown = sorted(asked - set(SCOPES))
    if unknown:
        raise OAuthError("invalid_scope", f"unknown scope {unknown[0][:40]!r}")
    return tuple(scope for scope in SCOPES if scope in asked)


def authorization_request(conn: Connection, client_id: str, redirect_uri: str | None,
                          response_type: str | None, scope: str | None
                          ) -> tuple[App, tuple[str, ...]]:
    """Check an authorization request; return the application and the scopes asked for.
    A plain OAuthError (unknown client, redirect URI not identical to the registered one) must
    be shown to the member, never redirected; a Redirectable one (response type, scope) goes
    back to the application's redirect URI."""
    app = client(conn, client_id)
    if app is None:
        raise OAuthError("invalid_client", "no application has this client_id")
    if redirect_uri is not None and redirect_uri != app.redirect_uri:
        raise OAuthError("invalid_request",
                         "redirect_uri is not the one registered for this application")
    if response_type != "code":
        raise Redirectable("unsupported_response_type", "response_type must be code",
                           app.redirect_uri)
    try:
        return app, parse_scopes(scope)
    except OAuthError as exc:
        raise Redirectable(exc.error, exc.description, app.redirect_uri) from None


def issue_code(conn: Connection, app_id: int, uid: int, scopes: tuple[str, ...],
               redirect_uri: str | None, now: datetime | None = None) -> str:
    """The member consented: a one-time code for the application, good for CODE_SECONDS."""
    code = secrets.token_urlsafe(32)
    conn.execute(oauth_codes.insert().values(
        code_hash=hashed(code), app_id=app_id, user_id=uid, scopes=" ".join(scopes),
        redirect_uri=redirect_uri,
        expires_at=(now or utcnow()) + timedelta(seconds=CODE_SECONDS)))
    return code


@dataclass(frozen=True)
class Token:
    access_token: str
    scopes: tuple[str, ...]


def authenticate_client(conn: Connection, client_id: str, client_secret: str) -> App:
    """The application whose credentials these are; OAuthError invalid_client (401) otherwise."""
    app = client(conn, client_id) if client_id else None
    stored = None if app is None else conn.execute(
        select(oauth_apps.c.secret_hash).where(oauth_apps.c.id == app.id)).scalar_one()
    if app is None or not secrets.compare_digest(stored or "", hashed(client_secret)):
        raise OAuthError("invalid_client", "client authentication failed", 401)
    return app


def exchange_code(conn: Connection, app: App, code: str, redirect_uri: str | None,
                  now: datetime | None = None) -> Token | OAuthError:
    """Exchange an authorization code for a Bearer token. A refusal is returned, not raised,
    because refusing a reused code also revokes the tokens it gave, which must be kept."""
    now = now or utcnow()
    code_hash = hashed(code)
    row = conn.execute(select(oauth_codes).where(oauth_codes.c.code_hash == code_hash)
                       .with_for_update()).first()
    if row is None or row.app_id != app.id:
        return OAuthError("invalid_grant", "the code is not valid for this client")
    if row.used_at is not None:
        conn.execute(update(oauth_tokens).where(
            oauth_tokens.c.code_hash == code_hash, oauth_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now))
        return OAuthError("invalid_grant", "the code was already used; its tokens are revoked")
    if row.expires_at <= now:
        return OAuthError("invalid_grant", "the code has expired")
    # Required when the authorization request carried one (RFC 6749 §4.1.3); else optional.
    if ((redirect_uri is not None or row.redirect_uri is not None)
            and redirect_uri != (row.redirect_uri or app.redirect_uri)):
        return OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    conn.execute(update(oauth_codes).where(oauth_codes.c.code_hash == code_hash)
                 .values(used_at=now))
    token = secrets.token_urlsafe(32)
    conn.execute(oauth_tokens.insert().values(
        token_hash=hashed(token), app_id=app.id, user_id=row.user_id, scopes=row.scopes,
        code_hash=code_hash, created_at=now))
    return Token(token, tuple(row.scopes.split()))


def token_grant(conn: Connection, token: str) -> Grant | None:
    """What the Bearer `token` allows, or None when it is unknown or revoked."""
    row = conn.execute(select(oauth_tokens.c.user_id, oauth_tokens.c.app_id,
                              oauth_tokens.c.scopes, oauth_tokens.c.revoked_at)
                       .where(oauth_tokens.c.token_hash == hashed(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    return Grant(row.user_id, row.app_id, frozenset(row.scopes.split()))


def _app(row: Row[Any]) -> App:
    return App(row.id, row.owner_id, row.name, row.client_id, row.redirect_uri, row.created_at)


@dataclass(frozen=True)
class Authorization:
    """An application a member allowed to act for them, with what it may do and since when."""

    app_id: int
    name: str
    scopes: tuple[str, ...]
    since: datetime


def authorizations_of(conn: Connection, uid: int) -> list[Authorization]:
    """The applications holding a live token of member `uid`, oldest authorization first."""
    rows = conn.execute(
        select(oauth_tokens.c.app_id, oauth_apps.c.name, oauth_tokens.c.scopes,
               oauth_tokens.c.created_at)
        .join(oauth_apps, oauth_apps.c.id == oauth_tokens.c.app_id)
        .where(oauth_tokens.c.user_id == uid, oauth_tokens.c.revoked_at.is_(None))
        .order_by(oauth_tokens.c.created_at, oauth_tokens.c.app_id)).all()
    found: dict[int, Authorization] = {}
    for row in rows:
        known = found.get(row.app_id)
        scopes = set(row.scopes.split()) | set(known.scopes if known else ())
        found[row.app_id] = Authorization(row.app_id, row.name,
                                          tuple(s for s in SCOPES if s in scopes),
                                          known.since if known else row.created_at)
    return list(found.values())


def revoke_authorization(conn: Connection, uid: int, app_id: int,
                         now: datetime | None = None) -> bool:
    """Member `uid` withdraws application `app_id`'s access: its tokens for them are revoked and
    its unused codes expire. False when it held no live token of theirs."""
    now = now or utcnow()
    revoked = conn.execute(update(oauth_tokens).where(
        oauth_tokens.c.user_id == uid, oauth_tokens.c.app_id == app_id,
        oauth_tokens.c.revoked_at.is_(None)).values(revoked_at=now)).rowcount
    conn.execute(update(oauth_codes).where(
        oauth_codes.c.user_id == uid, oauth_codes.c.app_id == app_id,
        oauth_codes.c.used_at.is_(None), oauth_codes.c.expires_at > now).values(expires_at=now))
    return revoked > 0


def revoke_token(conn: Connection, app: App, token: str, now: datetime | None = None) -> None:
    """RFC 7009: the application `app` revokes one of its tokens. An unknown or already revoked
    token is not an error (§2.2); another application's token is refused (§2.1)."""
    row = conn.execute(select(oauth_tokens.c.app_id).where(
        oauth_tokens.c.token_hash == hashed(token))).first()
    if row is None:
        return
    if row.app_id != app.id:
        raise OAuthError("unauthorized_client", "the token was not issued to this client")
    conn.execute(update(oauth_tokens).where(
        oauth_tokens.c.token_hash == hashed(token), oauth_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now or utcnow()))
