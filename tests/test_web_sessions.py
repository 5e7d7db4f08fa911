"""Web sessions live on the server: logging out ends one for good (a saved cookie opens
nothing), changing the password or "log out other sessions" ends the others, and a session
ends when idle too long or too old."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from base.tables.members import logins, web_sessions
from ledger import accounts
from ledger.schema import users
from ledger.sql import utcnow
from members.logins import set_password
from tests.web_helpers import PASSWORD, csrf_token, log_in, post_form, sign_up

pytest_plugins = ["tests.hub_fixtures"]

COOKIE = "flattr_session"
NEW_PASSWORD = "a different horse battery"


def saved(client) -> str:
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value


def restore(client, cookie: str) -> None:
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: cookie})


async def signed_in(client) -> bool:
    reply = await client.get("/dashboard", allow_redirects=False)
    assert reply.status in (200, 303)
    return reply.status == 200


def budget(engine) -> int | None:
    with engine.connect() as conn:
        return conn.execute(select(users.c.budget).where(users.c.name == "ana")).scalar_one()


async def test_a_cookie_saved_before_logout_opens_nothing_after(hub_client, engine):
    await sign_up(hub_client, "ana")
    token = await csrf_token(hub_client, "/money")
    cookie = saved(hub_client)
    assert await signed_in(hub_client)
    assert (await post_form(hub_client, "/logout", {}, token_from="/money")).status == 303
    restore(hub_client, cookie)
    assert not await signed_in(hub_client)
    reply = await hub_client.post("/money/budget", data={"csrf_token": token, "amount": "7.00"},
                                  allow_redirects=False)
    assert reply.status == 303 and reply.headers["Location"].startswith("/login")
    assert budget(engine) is None
    with engine.connect() as conn:
        assert conn.execute(select(web_sessions)).first() is None


async def test_log_out_other_sessions(hub_client):
    await sign_up(hub_client, "ana")
    elsewhere = saved(hub_client)
    hub_client.session.cookie_jar.clear()
    await log_in(hub_client, "ana")
    here = saved(hub_client)
    page = await (await hub_client.get("/settings/security")).text()
    assert page.count("UTC</td>") == 4 and "this browser" in page
    reply = await post_form(hub_client, "/settings/security/logout-others", {},
                            token_from="/settings/security", follow=True)
    assert "Logged out 1 other session." in await reply.text()
    assert await signed_in(hub_client)
    restore(hub_client, elsewhere)
    assert not await signed_in(hub_client)
    restore(hub_client, here)
    assert await signed_in(hub_client)


async def test_changing_the_password_ends_the_other_sessions(hub_client):
    await sign_up(hub_client, "ana")
    elsewhere = saved(hub_client)
    hub_client.session.cookie_jar.clear()
    await log_in(hub_client, "ana")
    wrong = await post_form(hub_client, "/settings/security/password", {
        "current": "not it at all", "password": NEW_PASSWORD}, token_from="/settings/security")
    assert wrong.status == 400 and "current password is not right" in await wrong.text()
    changed = await post_form(hub_client, "/settings/security/password", {
        "current": PASSWORD, "password": NEW_PASSWORD}, token_from="/settings/security")
    assert changed.status == 303
    here = saved(hub_client)
    assert await signed_in(hub_client)
    restore(hub_client, elsewhere)
    assert not await signed_in(hub_client)
    restore(hub_client, here)
    assert await signed_in(hub_client)
    hub_client.session.cookie_jar.clear()
    assert (await log_in(hub_client, "ana", NEW_PASSWORD)).status == 303


async def test_a_password_set_on_the_command_line_ends_every_session(hub_client, engine):
    await sign_up(hub_client, "ana")
    with engine.begin() as conn:
        set_password(conn, accounts.user_id(conn, "ana"), NEW_PASSWORD)
    assert not await signed_in(hub_client)


async def test_sessions_end_when_idle_or_too_old(hub_client, engine, hub_config):
    idle = hub_config.web.session_idle_seconds
    longest = hub_config.web.session_max_seconds
    await sign_up(hub_client, "ana")
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(update(web_sessions).values(
            created_at=now - timedelta(seconds=idle), last_seen_at=now - timedelta(seconds=idle)))
    assert not await signed_in(hub_client)

    await log_in(hub_client, "ana")
    with engine.begin() as conn:  # used a minute ago, but started too long ago
        conn.execute(update(web_sessions).values(
            created_at=now - timedelta(seconds=longest), last_seen_at=now - timedelta(minutes=1)))
    assert not await signed_in(hub_client)

    await log_in(hub_client, "ana")
    with engine.begin() as conn:
        conn.execute(update(web_sessions).values(
            created_at=now - timedelta(seconds=idle),
            last_seen_at=now - timedelta(seconds=idle - 60)))
    assert await signed_in(hub_client)
    with engine.connect() as conn:  # using it moved last_seen_at on
        seen = conn.execute(select(web_sessions.c.last_seen_at)).scalar_one()
        assert seen >= now and conn.execute(select(logins)).first() is not None


async def test_guessing_the_current_password_is_throttled_like_logins(hub_client, hub_config):
    await sign_up(hub_client, "ana")
    statuses = []
    for _ in range(hub_config.web.login_attempts):
        reply = await post_form(hub_client, "/settings/security/password", {
            "current": "a wrong guess!", "password": NEW_PASSWORD},
            token_from="/settings/security")
        statuses.append(reply.status)
    refused = await post_form(hub_client, "/settings/security/password", {
        "current": PASSWORD, "password": NEW_PASSWORD}, token_from="/settings/security")
    assert statuses == [400] * hub_config.web.login_attempts and refused.status == 429


async def test_signing_in_again_ends_the_browser_previous_session(hub_client, engine):
    await sign_up(hub_client, "ana")
    before = saved(hub_client)
    await log_in(hub_client, "ana")
    with engine.connect() as conn:
        assert len(conn.execute(select(web_sessions)).all()) == 1
    restore(hub_client, before)
    assert not await signed_in(hub_client)
