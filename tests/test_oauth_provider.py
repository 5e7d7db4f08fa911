"""The OAuth 2.0 provider: registering an application, the consent page, the token endpoint,
and the refusals RFC 6749 asks for (wrong redirect URI, reused or expired code, bad client)."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from base.tables.apps import oauth_apps, oauth_tokens
from ledger.sql import utcnow
from members.apps import issue_code
from tests.web_helpers import csrf_token, post_form, sign_up

pytest_plugins = ["tests.hub_fixtures"]

CALLBACK = "https://app.example/callback"


async def register(client, name="Podcast player", redirect_uri=CALLBACK):
    """Sign up the developer `dev` and register an app; returns (client_id, secret)."""
    await sign_up(client, "dev")
    page = await post_form(client, "/apps", {"name": name, "redirect_uri": redirect_uri},
                           token_from="/apps")
    assert page.status == 200, await page.text()
    html = await page.text()
    client_id = re.search(r'id="client-id">([^<]+)<', html).group(1)
    secret = re.search(r'id="client-secret">([^<]+)<', html).group(1)
    return client_id, secret


async def consent(client, client_id, *, new_member=True, **extra):
    """As member `ana` (signed up first unless `new_member` is false), open the consent page
    and allow; returns the redirect."""
    if new_member:
        client.session.cookie_jar.clear()
        await sign_up(client, "ana")
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
             "scope": "flattr thing", "state": "xyz", **extra}
    page = await client.get("/oauth/authorize", params=query)
    assert page.status == 200, await page.text()
    assert "Podcast player" in await page.text()
    answer = await post_form(client, "/oauth/authorize", {**query, "decision": "allow"},
                             token_from="/apps")
    assert answer.status == 303
    return answer.headers["Location"]


def basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode())
            .decode()}


def query_of(location):
    parts = urlsplit(location)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", {
        k: v[0] for k, v in parse_qs(parts.query).items()}


async def test_register_authorize_token_and_call_the_api(hub_client, engine):
    client_id, secret = await register(hub_client)
    with engine.connect() as conn:
        stored = conn.execute(select(oauth_apps.c.secret_hash)).scalar_one()
    assert stored == hashlib.sha256(secret.encode()).hexdigest() and secret not in stored
    assert secret not in await (await hub_client.get("/apps")).text()
    where, params = query_of(await consent(hub_client, client_id))
    assert where == CALLBACK and params["state"] == "xyz" and params["code"]
    reply = await hub_client.post("/oauth/token", headers=basic(client_id, secret), data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": CALLBACK})
    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    granted = await reply.json()
    assert granted["token_type"] == "bearer" and granted["scope"] == "flattr thing"
    with engine.connect() as conn:
        stored = conn.execute(select(oauth_tokens.c.token_hash)).scalar_one()
    assert stored == hashlib.sha256(granted["access_token"].encode()).hexdigest()
    me = await hub_client.get("/rest/v2/user",
                              headers={"Authorization": f"Bearer {granted['access_token']}"})
    assert (await me.json())["username"] == "ana"


async def test_a_reused_code_is_refused_and_revokes_its_token(hub_client):
    client_id, secret = await register(hub_client)
    _, params = query_of(await consent(hub_client, client_id))
    form = {"grant_type": "authorization_code", "code": params["code"],
            "redirect_uri": CALLBACK, "client_id": client_id, "client_secret": secret}
    first = await hub_client.post("/oauth/token", json=form)  # credentials in a JSON body
    assert first.status == 200
    access = (await first.json())["access_token"]
    again = await hub_client.post("/oauth/token", data=form)
    assert (again.status, (await again.json())["error"]) == (400, "invalid_grant")
    revoked = await hub_client.get("/rest/v2/user", headers={"Authorization": f"Bearer {access}"})
    assert (revoked.status, (await revoked.json())["error"]) == (401, "unauthorized")


async def test_redirect_uri_must_match_exactly(hub_client):
    client_id, secret = await register(hub_client)
    hub_client.session.cookie_jar.clear()
    await sign_up(hub_client, "ana")
    for wrong in ("https://app.example/callback/", "https://evil.example/callback",
                  "https://app.example/callback?x=1"):
        page = await hub_client.get("/oauth/authorize", allow_redirects=False, params={
            "response_type": "code", "client_id": client_id, "redirect_uri": wrong})
        assert page.status == 400 and "Location" not in page.headers
        assert "redirect_uri" in await page.text()
    unknown = await hub_client.get("/oauth/authorize", allow_redirects=False, params={
        "response_type": "code", "client_id": "nobody"})
    assert unknown.status == 400 and "Location" not in unknown.headers
    _, params = query_of(await consent(hub_client, client_id, new_member=False))
    reply = await hub_client.post("/oauth/token", headers=basic(client_id, secret), data={
        "grant_type": "authorization_code", "code": params["code"],
        "redirect_uri": "https://evil.example/callback"})
    assert (reply.status, (await reply.json())["error"]) == (400, "invalid_grant")


async def test_refusals_go_back_to_the_app_with_the_state(hub_client):
    client_id, _ = await register(hub_client)
    hub_client.session.cookie_jar.clear()
    await sign_up(hub_client, "ana")
    base = {"client_id": client_id, "redirect_uri": CALLBACK, "state": "s1"}
    for extra, error in (({"response_type": "token"}, "unsupported_response_type"),
                         ({"response_type": "code", "scope": "flattr admin"}, "invalid_scope")):
        page = await hub_client.get("/oauth/authorize", params={**base, **extra},
                                    allow_redirects=False)
        assert page.status == 303
        where, params = query_of(page.headers["Location"])
        assert (where, params["error"], params["state"]) == (CALLBACK, error, "s1")
    denied = await post_form(hub_client, "/oauth/authorize",
                             {**base, "response_type": "code", "decision": "deny"},
                             token_from="/apps")
    _, params = query_of(denied.headers["Location"])
    assert (params["error"], params["state"]) == ("access_denied", "s1") and "code" not in params
    forged = await hub_client.post("/oauth/authorize", allow_redirects=False,
                                   data={**base, "response_type": "code", "decision": "allow"})
    assert forged.status == 403


async def test_consent_needs_a_signed_in_member(hub_client):
    client_id, _ = await register(hub_client)
    hub_client.session.cookie_jar.clear()
    page = await hub_client.get("/oauth/authorize", allow_redirects=False,
                                params={"response_type": "code", "client_id": client_id})
    assert page.status == 303 and page.headers["Location"].startswith("/login?next=")
    apps = await hub_client.get("/apps", allow_redirects=False)
    assert apps.status == 303


async def test_token_endpoint_refusals(hub_client, engine):
    client_id, secret = await register(hub_client)
    with engine.begin() as conn:
        app_id, owner = conn.execute(select(oauth_apps.c.id, oauth_apps.c.owner_id)).one()
        expired = issue_code(conn, app_id, owner, ("flattr",), None,
                             now=utcnow() - timedelta(hours=1))
        good = issue_code(conn, app_id, owner, ("flattr",), None)
    grant = {"grant_type": "authorization_code", "code": good}
    cases = [
        (basic(client_id, "wrong secret"), grant, 401, "invalid_client"),
        ({}, grant, 401, "invalid_client"),
        ({"Authorization": "Basic !!!"}, grant, 401, "invalid_client"),
        (basic(client_id, secret), {**grant, "grant_type": "password"}, 400,
         "unsupported_grant_type"),
        (basic(client_id, secret), {"grant_type": "authorization_code"}, 400, "invalid_request"),
        (basic(client_id, secret), {**grant, "code": "made-up"}, 400, "invalid_grant"),
        (basic(client_id, secret), {**grant, "code": expired}, 400, "invalid_grant"),
    ]
    for headers, form, status, error in cases:
        reply = await hub_client.post("/oauth/token", headers=headers, data=form)
        body = await reply.json()
        assert (reply.status, body["error"]) == (status, error), (form, body)
        assert secret not in body["error_description"]
    ok = await hub_client.post("/oauth/token", headers=basic(client_id, secret), data=grant)
    assert ok.status == 200


async def test_deleting_an_app_revokes_its_tokens(hub_client):
    client_id, secret = await register(hub_client)
    _, params = query_of(await consent(hub_client, client_id))
    form = {"grant_type": "authorization_code", "code": params["code"]}
    refused = await hub_client.post("/oauth/token", headers=basic(client_id, secret), data=form)
    assert (await refused.json())["error"] == "invalid_grant"  # redirect_uri was in the request
    access = (await (await hub_client.post(
        "/oauth/token", headers=basic(client_id, secret),
        data={**form, "redirect_uri": CALLBACK})).json())["access_token"]
    hub_client.session.cookie_jar.clear()
    await post_form(hub_client, "/login", {"name": "dev", "password": "correct horse battery"})
    page = await hub_client.get("/apps")
    app_id = re.search(r'action="/apps/(\d+)/delete"', await page.text()).group(1)
    gone = await hub_client.post(f"/apps/{app_id}/delete", allow_redirects=False,
                                 data={"csrf_token": await csrf_token(hub_client, "/apps")})
    assert gone.status == 303
    reply = await hub_client.get("/rest/v2/user", headers={"Authorization": f"Bearer {access}"})
    assert reply.status == 401


async def test_registration_refuses_bad_input(hub_client, engine):
    await sign_up(hub_client, "dev")
    for form in ({"name": "", "redirect_uri": CALLBACK},
                 {"name": "x", "redirect_uri": "not a url"},
                 {"name": "x", "redirect_uri": "ftp://app.example/cb"},
                 {"name": "x", "redirect_uri": "https://app.example/cb#frag"}):
        page = await post_form(hub_client, "/apps", form, token_from="/apps")
        assert page.status == 400
    with engine.connect() as conn:
        assert conn.execute(select(oauth_apps.c.id)).first() is None
