"""Accounts on the web: sign up, log in and out, sessions, CSRF and login throttling."""

from __future__ import annotations

from sqlalchemy import select

from base.tables.members import logins
from tests.web_helpers import PASSWORD, csrf_token, log_in, post_form, sign_up

pytest_plugins = ["tests.hub_fixtures"]


async def test_sign_up_logs_in_and_stores_an_argon2_hash(hub_client, engine):
    reply = await sign_up(hub_client, "ana", email="ana@example.org")
    assert reply.headers["Location"] == "/dashboard"
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    with engine.connect() as conn:
        row = conn.execute(select(logins)).one()
    assert row.email == "ana@example.org"
    assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash
    front = await hub_client.get("/", allow_redirects=False)
    assert front.status == 303 and front.headers["Location"] == "/dashboard"


async def test_bad_sign_ups_say_why_and_create_nothing(hub_client, engine):
    await sign_up(hub_client, "ana")
    hub_client.session.cookie_jar.clear()
    cases = [({"name": "ana", "password": PASSWORD}, "already exists"),
             ({"name": "bo", "password": "short"}, "at least 10"),
             ({"name": "b o", "password": PASSWORD}, "user name must be"),
             ({"name": "bo", "password": PASSWORD, "email": "nope"}, "not an e-mail")]
    for form, message in cases:
        reply = await post_form(hub_client, "/signup", form, token_from="/signup")
        assert reply.status == 400
        assert message in await reply.text()
    with engine.connect() as conn:
        assert len(conn.execute(select(logins)).all()) == 1


async def test_log_in_next_and_log_out(hub_client):
    await sign_up(hub_client, "ana")
    hub_client.session.cookie_jar.clear()
    page = await hub_client.get("/login?next=/accounts")
    assert 'name="next" value="/accounts"' in await page.text()
    reply = await post_form(hub_client, "/login", {"name": "ana", "password": PASSWORD,
                                                   "next": "/accounts"})
    assert reply.status == 303 and reply.headers["Location"] == "/accounts"
    assert "Log out (ana)" in await (await hub_client.get("/login")).text()
    reply = await post_form(hub_client, "/logout", {})
    assert reply.status == 303
    assert "Log out" not in await (await hub_client.get("/login")).text()


async def test_open_redirects_are_refused(hub_client):
    await sign_up(hub_client, "ana")
    hub_client.session.cookie_jar.clear()
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        reply = await post_form(hub_client, "/login", {"name": "ana", "password": PASSWORD,
                                                       "next": target})
        assert reply.headers["Location"] == "/dashboard"


async def test_wrong_password_and_unknown_name_get_the_same_answer(hub_client):
    await sign_up(hub_client, "ana")
    hub_client.session.cookie_jar.clear()
    wrong = await log_in(hub_client, "ana", "not the password")
    unknown = await log_in(hub_client, "nobody", "not the password")
    assert wrong.status == unknown.status == 400
    assert "Wrong name or password." in await wrong.text()
    assert "Wrong name or password." in await unknown.text()


async def test_login_attempts_are_throttled(hub_client, hub_config):
    await sign_up(hub_client, "ana")
    hub_client.session.cookie_jar.clear()
    for _ in range(hub_config.web.login_attempts):
        assert (await log_in(hub_client, "ana", "wrong password!")).status == 400
    blocked = await log_in(hub_client, "ana")
    assert blocked.status == 429
    assert "Too many failed attempts" in await blocked.text()


async def test_forms_without_the_session_csrf_token_are_refused(hub_client, engine):
    await csrf_token(hub_client, "/signup")
    for token in (None, "forged"):
        form = {"name": "mallory", "password": PASSWORD}
        if token:
            form["csrf_token"] = token
        reply = await hub_client.post("/signup", data=form, allow_redirects=False)
        assert reply.status == 403
        assert (await reply.json())["error"] == "forbidden"
    with engine.connect() as conn:
        assert conn.execute(select(logins)).first() is None


async def test_a_browser_gets_error_pages_as_html(hub_client):
    reply = await hub_client.get("/no/such/page", headers={"Accept": "text/html"})
    assert reply.status == 404
    assert reply.content_type == "text/html" and "<h1>404</h1>" in await reply.text()
    api = await hub_client.get("/no/such/page")
    assert (await api.json())["error"] == "not_found"
