"""API tokens stay valid as Flattr's did (no expiry, no refresh: existing clients keep working)
but are revocable: the member who authorized an application sees it on /settings/security and
revokes it; the application revokes its own token at /oauth/revoke (RFC 7009)."""

from __future__ import annotations

import re

from ledger.accounts import user_id
from members.apps import register_app
from tests.test_oauth_provider import CALLBACK, basic, consent, query_of, register
from tests.web_helpers import post_form

pytest_plugins = ["tests.hub_fixtures"]


async def granted(client, client_id, secret) -> dict:
    """ana (signed up here) allows the app; the token endpoint's answer."""
    _, params = query_of(await consent(client, client_id))
    reply = await client.post("/oauth/token", headers=basic(client_id, secret), data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": CALLBACK})
    assert reply.status == 200
    return await reply.json()


async def works(client, access: str) -> bool:
    reply = await client.get("/rest/v2/user", headers={"Authorization": f"Bearer {access}"})
    assert reply.status in (200, 401)
    return reply.status == 200


async def test_the_member_sees_and_revokes_an_app_they_authorized(hub_client):
    client_id, secret = await register(hub_client)
    answer = await granted(hub_client, client_id, secret)
    assert "expires_in" not in answer and "refresh_token" not in answer
    page = await (await hub_client.get("/settings/security")).text()
    assert "Podcast player" in page and "flattr, thing" in page
    app_id = re.search(r'action="/settings/security/apps/(\d+)/revoke"', page).group(1)
    assert (await hub_client.post(f"/settings/security/apps/{app_id}/revoke")).status == 403
    assert await works(hub_client, answer["access_token"])
    reply = await post_form(hub_client, f"/settings/security/apps/{app_id}/revoke", {},
                            token_from="/settings/security", follow=True)
    assert "Access revoked" in await reply.text()
    assert "Podcast player" not in await (await hub_client.get("/settings/security")).text()
    assert not await works(hub_client, answer["access_token"])
    again = await post_form(hub_client, f"/settings/security/apps/{app_id}/revoke", {},
                            token_from="/settings/security")
    assert again.status == 404


async def test_an_app_revokes_its_own_token_rfc7009(hub_client, engine):
    client_id, secret = await register(hub_client)
    access = (await granted(hub_client, client_id, secret))["access_token"]
    with engine.begin() as conn:
        other = register_app(conn, user_id(conn, "dev"), "Other app", CALLBACK)
    other_id, other_secret = other.app.client_id, other.client_secret
    hub_client.session.cookie_jar.clear()

    foreign = await hub_client.post("/oauth/revoke", headers=basic(other_id, other_secret),
                                    data={"token": access})
    assert (foreign.status, (await foreign.json())["error"]) == (400, "unauthorized_client")
    assert await works(hub_client, access)
    unauthenticated = await hub_client.post("/oauth/revoke", data={"token": access})
    assert unauthenticated.status == 401 and await works(hub_client, access)
    missing = await hub_client.post("/oauth/revoke", headers=basic(client_id, secret))
    assert (await missing.json())["error"] == "invalid_request"

    for _ in range(2):  # revoking twice (or an unknown token) is not an error
        done = await hub_client.post("/oauth/revoke", headers=basic(client_id, secret),
                                     data={"token": access, "token_type_hint": "access_token"})
        assert done.status == 200 and done.headers["Cache-Control"] == "no-store"
    assert not await works(hub_client, access)
    unknown = await hub_client.post("/oauth/revoke", json={
        "token": "never-issued", "client_id": client_id, "client_secret": secret})
    assert unknown.status == 200


async def test_client_ids_no_app_could_have_are_refused_not_looked_up(hub_client):
    """PostgreSQL refuses a NUL byte in a query parameter: a client id carrying one (found by
    schemathesis in the Basic credentials) must be an unknown client, not a 500."""
    for client_id in ("abc\x00def", "é" * 20, "x" * 5000):
        reply = await hub_client.post("/oauth/revoke", headers=basic(client_id, "secret"),
                                      data={"token": "anything"})
        assert reply.status == 401, client_id
        assert (await reply.json())["error"] == "invalid_client"
