"""The Flattr button on the web: the script, its cacheable cookie-free counter, the
auto-submit flow through login, and the things pages."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

from catalog import things as catalog
from ledger.accounts import user_id
from tests.rest_helpers import claim_site
from tests.web_helpers import PASSWORD, csrf_token, log_in, post_form, sign_up

pytest_plugins = ["tests.hub_fixtures"]

POST = "https://bo.example/post"
SUBMIT = "/submit/auto?" + urlencode({"user_id": "bo", "url": POST, "title": "Bo's post",
                                      "category": "text", "language": "en_GB",
                                      "tags": "jazz,live", "description": "Live jazz"})
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def form_fields(page: str) -> dict[str, str]:
    return {name: unescape(value) for name, value in HIDDEN.findall(page)}


async def count(client, url=POST):
    reply = await client.get("/button/count?" + urlencode({"url": url}))
    assert reply.status == 200
    return (await reply.json())["flattrs"]


async def two_members(client):
    await sign_up(client, "bo")
    client.session.cookie_jar.clear()
    await sign_up(client, "ana")
    client.session.cookie_jar.clear()


def bo_claims_his_site(engine):
    with engine.begin() as conn:
        claim_site(conn, user_id(conn, "bo"), POST)


async def test_button_script_is_cacheable_javascript_without_cookies(hub_client):
    reply = await hub_client.get("/js/button.js")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/javascript")
    assert "public" in reply.headers["Cache-Control"] and "Set-Cookie" not in reply.headers
    body = await reply.text()
    assert "FlattrButton" in body and 'credentials: "omit"' in body
    again = await hub_client.get("/js/button.js", headers={"If-None-Match": reply.headers["ETag"]})
    assert again.status == 304


async def test_counter_is_public_cacheable_and_cookie_free(hub_client):
    await sign_up(hub_client, "bo")  # the client now holds a session cookie
    reply = await hub_client.get("/button/count?" + urlencode({"url": POST}))
    assert reply.status == 200 and "Set-Cookie" not in reply.headers
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert reply.headers["Cache-Control"] == "public, max-age=60"
    assert await reply.json() == {"url": POST, "thing_id": None, "flattrs": 0, "flattrs_month": 0}
    again = await hub_client.get("/button/count?" + urlencode({"url": POST}),
                                 headers={"If-None-Match": reply.headers["ETag"]})
    assert again.status == 304 and "Set-Cookie" not in again.headers
    bad = await hub_client.get("/button/count?url=javascript:alert(1)")
    assert bad.status == 400 and (await bad.json())["error"] == "invalid_parameters"
    assert bad.headers["Access-Control-Allow-Origin"] == "*"


async def test_submit_logged_out_goes_through_login_and_flattrs_once(hub_client, engine):
    await two_members(hub_client)
    bo_claims_his_site(engine)
    reply = await hub_client.get(SUBMIT, allow_redirects=False)
    login_page = urlsplit(reply.headers["Location"])
    assert reply.status == 303 and login_page.path == "/login"
    back = parse_qs(login_page.query)["next"][0]
    assert urlsplit(back).path == "/submit/auto"
    assert parse_qs(urlsplit(back).query) == parse_qs(urlsplit(SUBMIT).query)
    login = await post_form(hub_client, "/login", {"name": "ana", "password": PASSWORD,
                                                   "next": back})
    assert login.status == 303 and login.headers["Location"] == back
    page = await hub_client.get(back)
    text = await page.text()
    assert page.status == 200 and "Bo&#39;s post" in text and "Flattr this" in text
    with engine.connect() as conn:
        assert catalog.lookup_url(conn, POST) is None  # created on the first flattr only
    assert await count(hub_client) == 0
    fields = form_fields(text)
    assert fields["url"] == POST and fields["user_id"] == "bo"
    done = await hub_client.post("/submit/auto", data=fields)
    assert done.status == 200 and "Flattred!" in await done.text()
    assert await count(hub_client) == 1
    with engine.connect() as conn:
        thing = catalog.get_thing(conn, catalog.lookup_url(conn, POST))
    assert (thing["owner"]["username"], thing["category"], thing["tags"]) == (
        "bo", "text", ["jazz", "live"])
    twice = await hub_client.post("/submit/auto", data=fields)
    assert twice.status == 409 and "already flattred" in await twice.text()
    assert await count(hub_client) == 1
    assert "You already flattred" in await (await hub_client.get(SUBMIT)).text()


async def test_submit_refuses_self_flattr_unknown_users_and_bad_parameters(hub_client, engine):
    await two_members(hub_client)
    await log_in(hub_client, "bo")
    own = await hub_client.get(SUBMIT)
    assert own.status == 403 and "your own thing" in await own.text()
    token = await csrf_token(hub_client, "/things")
    posted = await hub_client.post("/submit/auto", data={
        "csrf_token": token, "user_id": "bo", "url": POST})
    assert posted.status == 403
    nobody = await hub_client.get("/submit/auto?" + urlencode({"user_id": "zed", "url": POST}))
    assert nobody.status == 404 and "no Flattr Hub user" in await nobody.text()
    for query in ({"user_id": "bo"}, {"url": POST}, {"user_id": "bo", "url": POST,
                                                      "category": "food"}):
        bad = await hub_client.get("/submit/auto?" + urlencode(query))
        assert bad.status == 400
    forged = await hub_client.post("/submit/auto", data={"user_id": "bo", "url": POST})
    assert forged.status == 403
    with engine.connect() as conn:
        assert catalog.lookup_url(conn, POST) is None


async def test_things_pages(hub_client, engine):
    await two_members(hub_client)
    bo_claims_his_site(engine)
    with engine.begin() as conn:
        bo, ana = user_id(conn, "bo"), user_id(conn, "ana")
        jazz = catalog.create_thing(conn, bo, POST, "Jazz night", "Live", "audio", "en_GB",
                                    "jazz")
        code = catalog.create_thing(conn, bo, "https://bo.example/code", "Code", None,
                                    "software", "sv_SE", "python")
        catalog.flattr(conn, ana, code)
    listing = await (await hub_client.get("/things")).text()
    assert listing.index("Code") < listing.index("Jazz night")
    found = await (await hub_client.get("/things?q=jazz&category=audio")).text()
    assert "Jazz night" in found and ">Code<" not in found
    assert "Code" in await (await hub_client.get("/things?tag=python&sort=flattrs_all")).text()
    bad = await hub_client.get("/things?sort=random")
    assert bad.status == 400
    top = await (await hub_client.get("/things/top")).text()
    assert "Code" in top and "Jazz night" not in top
    page = await hub_client.get(f"/things/{jazz}")
    assert page.status == 200 and "Jazz night" in await page.text()
    assert (await hub_client.get("/things/999999")).status == 404
    await log_in(hub_client, "ana")
    flattred = await post_form(hub_client, f"/things/{jazz}/flattr", {},
                               token_from=f"/things/{jazz}")
    assert flattred.status == 200 and "Flattred!" in await flattred.text()
    assert await count(hub_client) == 1


async def test_button_demo_page_embeds_the_script(hub_client):
    reply = await hub_client.get("/button/demo?" + urlencode({"uid": "bo", "url": POST}))
    text = await reply.text()
    assert reply.status == 200 and '<script src="/js/button.js"' in text
    assert 'class="FlattrButton"' in text and 'data-flattr-uid="bo"' in text
    assert "Set-Cookie" not in reply.headers
