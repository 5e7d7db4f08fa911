"""The Flattr REST API v2 at /rest/v2: resources, Flattr's field names and error codes,
pagination, scopes, rate-limit headers, subscriptions and activities."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from aiohttp import web
from sqlalchemy import func, select

from ledger.schema import flattrs, subscriptions
from ledger.verify import verify
from tests.fakes.server import serve
from tests.rest_helpers import bearer, member, thing, token

pytest_plugins = ["tests.hub_fixtures"]


@pytest.fixture
def people(engine, hub_config):
    """ana gives (all scopes), bo owns a thing, cy has no money."""
    ana = member(engine, hub_config, "ana")
    bo = member(engine, hub_config, "bo")
    cy = member(engine, hub_config, "cy", budget=None, funds=0)
    post = thing(engine, bo, "https://bo.example/post", title="Bo's post", tags="blog,music",
                 category="audio", description="a tune")
    return {"ana": ana, "bo": bo, "cy": cy, "post": post,
            "ana_token": token(engine, ana), "bo_token": token(engine, bo),
            "cy_token": token(engine, cy)}


async def test_public_resources_use_flattrs_field_names(hub_client, people):
    post = people["post"]
    reply = await hub_client.get(f"/rest/v2/things/{post}")
    assert reply.status == 200
    body = await reply.json()
    assert {k: body[k] for k in ("type", "id", "url", "title", "category", "tags", "hidden",
                                 "flattrs", "description")} == {
        "type": "thing", "id": post, "url": "https://bo.example/post", "title": "Bo's post",
        "category": "audio", "tags": ["blog", "music"], "hidden": False, "flattrs": 0,
        "description": "a tune"}
    assert body["resource"].endswith(f"/rest/v2/things/{post}")
    assert body["owner"]["username"] == "bo" and body["owner"]["type"] == "user"
    assert "flattred" not in body and "last_flattr_at" not in body
    user = await (await hub_client.get("/rest/v2/users/bo")).json()
    assert user["username"] == "bo" and user["resource"].endswith("/rest/v2/users/bo")
    assert "email" not in user and "registered_at" not in user
    cats = await (await hub_client.get("/rest/v2/categories")).json()
    assert cats[0] == {"id": "text", "text": "Text", "name": "Text"}
    assert {"id": "rest", "text": "Other", "name": "Other"} in cats
    langs = await (await hub_client.get("/rest/v2/languages")).json()
    assert {"id": "en_GB", "text": "English"} in langs


async def test_several_things_and_not_found(hub_client, engine, people):
    other = thing(engine, people["bo"], "https://bo.example/other", title="Other")
    many = await (await hub_client.get(f"/rest/v2/things/{other},{people['post']},999")).json()
    assert [t["id"] for t in many] == [other, people["post"]]
    for path, code in (("/rest/v2/things/999", "not_found"),
                       ("/rest/v2/users/nobody", "not_found"),
                       ("/rest/v2/users/nobody/flattrs", "not_found"),
                       ("/rest/v2/no/such/resource", "not_found")):
        reply = await hub_client.get(path)
        assert reply.status == 404, path
        assert (await reply.json())["error"] == code
        assert "error_description" in await reply.json()


async def test_lookup_redirects_to_the_thing_or_says_not_found(hub_client, people):
    reply = await hub_client.get("/rest/v2/things/lookup?url=https://BO.example/post",
                                 allow_redirects=False)
    assert reply.status == 302
    assert reply.headers["Location"].endswith(f"/rest/v2/things/{people['post']}")
    assert (await reply.json())["message"] == "found"
    auto = "https://flattr.com/submit/auto?user_id=bo&url=https%3A%2F%2Fbo.example%2Fpost"
    reply = await hub_client.get("/rest/v2/things/lookup/", params={"url": auto},
                                 allow_redirects=False)
    assert reply.status == 302
    missing = await hub_client.get("/rest/v2/things/lookup?url=not%20a%20url")
    assert missing.status == 404
    answer = await missing.json()
    assert answer.pop("error_uri").endswith("/openapi.json")
    assert answer == {"message": "not_found", "description": "No thing was found",
                      "error": "not_found", "error_description": "No thing was found"}
    assert (await hub_client.get("/rest/v2/things/lookup")).status == 400


async def test_flattr_a_thing_and_the_errors_flattr_documents(hub_client, engine, people):
    post, ana = people["post"], bearer(people["ana_token"])
    reply = await hub_client.post(f"/rest/v2/things/{post}/flattr", headers=ana)
    assert reply.status == 200
    body = await reply.json()
    assert body["message"] == "ok" and body["thing"]["id"] == post
    again = await hub_client.post(f"/rest/v2/things/{post}/flattr", headers=ana)
    assert (again.status, (await again.json())["error"]) == (403, "flattr_once")
    own = await hub_client.post(f"/rest/v2/things/{post}/flattr",
                                headers=bearer(people["bo_token"]))
    assert (own.status, (await own.json())["error"]) == (403, "flattr_owner")
    poor = await hub_client.post(f"/rest/v2/things/{post}/flattr",
                                 headers=bearer(people["cy_token"]))
    assert (poor.status, (await poor.json())["error"]) == (401, "no_means")
    gone = await hub_client.post("/rest/v2/things/999/flattr", headers=ana)
    assert (gone.status, (await gone.json())["error"]) == (404, "not_found")
    anonymous = await hub_client.post(f"/rest/v2/things/{post}/flattr")
    assert (anonymous.status, (await anonymous.json())["error"]) == (401, "unauthorized")
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    forged = await hub_client.post(f"/rest/v2/things/{post}/flattr",
                                   headers=bearer("not-a-token"))
    assert (forged.status, (await forged.json())["error"]) == (401, "unauthorized")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(flattrs)).scalar_one() == 1
    seen = await (await hub_client.get(f"/rest/v2/things/{post}", headers=ana)).json()
    assert seen["flattred"] is True and seen["flattrs"] == 1
    mine = await (await hub_client.get(f"/rest/v2/things/{post}",
                                       headers=bearer(people["bo_token"]))).json()
    assert mine["flattred"] is False and mine["last_flattr_at"] > 0 and "updated_at" in mine


async def test_flattr_a_url_creates_an_auto_submitted_thing(hub_client, engine, people):
    auto = ("https://hub.example/submit/auto?user_id=bo&url=https%3A%2F%2Fbo.example%2Fnew"
            "&title=New+one&category=text")
    reply = await hub_client.post("/rest/v2/flattr", json={"url": auto},
                                  headers=bearer(people["ana_token"]))
    assert reply.status == 200, await reply.text()
    created = (await reply.json())["thing"]
    assert created["title"] == "New one" and created["owner"]["username"] == "bo"
    by_form = await hub_client.post("/rest/v2/flattr", data={"url": "https://bo.example/post"},
                                    headers=bearer(people["ana_token"]))
    assert by_form.status == 200, await by_form.text()
    unknown = await hub_client.post("/rest/v2/flattr", json={"url": "https://nowhere.invalid/x"},
                                    headers=bearer(people["ana_token"]))
    assert (unknown.status, (await unknown.json())["error"]) == (404, "not_found")
    missing = await hub_client.post("/rest/v2/flattr", json={},
                                    headers=bearer(people["ana_token"]))
    assert (missing.status, (await missing.json())["error"]) == (400, "invalid_parameters")
    broken = await hub_client.post("/rest/v2/flattr", data="{nope",
                                   headers={**bearer(people["ana_token"]),
                                            "Content-Type": "application/json"})
    assert (broken.status, (await broken.json())["error"]) == (400, "invalid_request")


async def test_scopes_are_enforced_per_endpoint(hub_client, engine, people):
    read_only = bearer(token(engine, people["ana"], ()))
    cases = [("post", f"/rest/v2/things/{people['post']}/flattr", "flattr"),
             ("post", "/rest/v2/things", "thing"),
             ("delete", f"/rest/v2/things/{people['post']}", "thing"),
             ("get", "/rest/v2/user/subscriptions", "flattr")]
    for method, path, scope in cases:
        reply = await getattr(hub_client, method)(path, headers=read_only,
                                                  json={"url": "https://x.example/"})
        assert reply.status == 403, path
        body = await reply.json()
        assert body["error"] == "insufficient_scope" and scope in body["error_description"]
    me = await (await hub_client.get("/rest/v2/user", headers=read_only)).json()
    assert "email" not in me and "registered_at" not in me
    email_only = bearer(token(engine, people["ana"], ("email",)))
    me = await (await hub_client.get("/rest/v2/user", headers=email_only)).json()
    assert me["email"] == "ana@example.org" and "registered_at" not in me
    full = await (await hub_client.get("/rest/v2/user",
                                       headers=bearer(people["ana_token"]))).json()
    assert full["registered_at"] > 0 and full["email"] == "ana@example.org"
    assert (await hub_client.get("/rest/v2/user")).status == 401


async def test_create_update_delete_a_thing(hub_client, engine, people):
    bo = bearer(people["bo_token"])
    made = await hub_client.post("/rest/v2/things", headers=bo, json={
        "url": "https://bo.example/album", "title": "Album", "tags": "music,album",
        "category": "audio", "language": "sv_SE", "hidden": False})
    assert made.status == 201
    body = await made.json()
    assert body["message"] == "ok" and body["link"].endswith(f"/rest/v2/things/{body['id']}")
    tid = body["id"]
    twice = await hub_client.post("/rest/v2/things", headers=bo,
                                  json={"url": "https://bo.example/album", "title": "Album"})
    assert twice.status == 201 and (await twice.json())["id"] == tid  # bo's site: his thing
    ana = bearer(people["ana_token"])
    taken = await hub_client.post("/rest/v2/things", headers=ana,
                                  json={"url": "https://bo.example/album"})
    assert taken.status == 409
    bad = await hub_client.post("/rest/v2/things", headers=bo,
                                json={"url": "https://bo.example/x", "category": "nope"})
    assert (bad.status, (await bad.json())["error"]) == (400, "validation")
    patched = await hub_client.patch(f"/rest/v2/things/{tid}", headers=bo,
                                     json={"title": "Album (remastered)", "hidden": True})
    assert patched.status == 200
    assert (await patched.json())["description"] == "Thing was updated correctly"
    workaround = await hub_client.post(f"/rest/v2/things/{tid}", headers=bo,
                                       data={"_method": "patch", "description": "Songs"})
    assert workaround.status == 200
    seen = await (await hub_client.get(f"/rest/v2/things/{tid}")).json()
    assert (seen["title"], seen["hidden"], seen["description"]) == (
        "Album (remastered)", True, "Songs")
    hidden_mine = await (await hub_client.get("/rest/v2/user/things", headers=bo)).json()
    assert tid in [t["id"] for t in hidden_mine]
    public = await (await hub_client.get("/rest/v2/users/bo/things")).json()
    assert tid not in [t["id"] for t in public] and people["post"] in [t["id"] for t in public]
    theirs = await hub_client.patch(f"/rest/v2/things/{tid}", json={"title": "mine now"},
                                    headers=bearer(people["ana_token"]))
    assert (theirs.status, (await theirs.json())["error"]) == (403, "forbidden")
    assert (await hub_client.delete(f"/rest/v2/things/{tid}", headers=bo)).status == 204
    assert (await hub_client.get(f"/rest/v2/things/{tid}")).status == 404
    assert (await hub_client.delete(f"/rest/v2/things/{tid}", headers=bo)).status == 404


async def test_search_and_pagination(hub_client, engine, people):
    for i in range(5):
        thing(engine, people["bo"], f"https://bo.example/song/{i}", title=f"Song {i}",
              tags="music", category="audio")
    first = await (await hub_client.get("/rest/v2/things/search",
                                        params={"query": "song", "count": "2"})).json()
    assert (first["total_items"], first["items"], first["page"]) == (5, 2, 1)
    third = await (await hub_client.get("/rest/v2/things/search",
                                        params={"query": "song", "count": "2",
                                                "page": "3"})).json()
    assert (third["items"], third["page"]) == (1, 3)
    ids = {t["id"] for t in first["things"]} | {t["id"] for t in third["things"]}
    assert len(ids) == 3
    tagged = await (await hub_client.get("/rest/v2/things/search",
                                         params={"tags": "blog | nothing"})).json()
    assert [t["id"] for t in tagged["things"]] == [people["post"]]
    by_user = await (await hub_client.get("/rest/v2/things/search",
                                          params={"user": "nobody"})).json()
    assert by_user["total_items"] == 0
    listed = await (await hub_client.get("/rest/v2/users/bo/things",
                                         params={"count": "4", "page": "2"})).json()
    assert len(listed) == 2
    for params in ({"count": "0"}, {"count": "101"}, {"page": "0"}, {"page": "x"},
                   {"sort": "newest"}):
        reply = await hub_client.get("/rest/v2/things/search", params=params)
        assert (reply.status, (await reply.json())["error"]) == (400, "invalid_parameters"), \
            params


async def test_flattr_listings_and_activities(hub_client, engine, people):
    ana = bearer(people["ana_token"])
    second = thing(engine, people["bo"], "https://bo.example/second", title="Second")
    for tid in (people["post"], second):
        assert (await hub_client.post(f"/rest/v2/things/{tid}/flattr", headers=ana)).status == 200
    mine = await (await hub_client.get("/rest/v2/user/flattrs", headers=ana)).json()
    assert [f["thing"]["id"] for f in mine] == [second, people["post"]]
    assert mine[0]["type"] == "flattr" and mine[0]["owner"]["username"] == "ana"
    page2 = await (await hub_client.get("/rest/v2/users/ana/flattrs",
                                        params={"count": "1", "page": "2"})).json()
    assert [f["thing"]["id"] for f in page2] == [people["post"]]
    of_thing = await (await hub_client.get(f"/rest/v2/things/{second}/flattrs")).json()
    assert [f["owner"]["username"] for f in of_thing] == ["ana"]
    out = await hub_client.get("/rest/v2/users/ana/activities")
    assert out.content_type == "application/stream+json"
    items = (await out.json())["items"]
    assert [i["verb"] for i in items] == ["like", "like"]
    assert items[0]["title"] == 'ana flattred "Second"'
    assert items[0]["actor"] == {"displayName": "ana", "url": items[0]["actor"]["url"],
                                 "objectType": "person"}
    assert items[0]["id"].endswith(f":ana/flattr/{second}")
    incoming = await (await hub_client.get("/rest/v2/user/activities?type=incoming",
                                           headers=bearer(people["bo_token"]))).json()
    assert len(incoming["items"]) == 2
    outgoing_of_bo = await (await hub_client.get("/rest/v2/user/activities",
                                                 headers=bearer(people["bo_token"]))).json()
    assert outgoing_of_bo == {"items": []}
    bad = await hub_client.get("/rest/v2/users/ana/activities?type=sideways")
    assert bad.status == 400


@pytest.mark.settings({"api.rate_limit": 3})
async def test_rate_limit_headers_and_refusal(hub_client, hub_config, people):
    ana = bearer(people["ana_token"])
    seen = []
    for _ in range(3):
        reply = await hub_client.get("/rest/v2/user", headers=ana)
        assert reply.status == 200
        seen.append((reply.headers["X-RateLimit-Limit"], reply.headers["X-RateLimit-Remaining"],
                     reply.headers["X-RateLimit-Current"]))
        assert int(reply.headers["X-RateLimit-Reset"]) > 0
    assert seen == [("3", "2", "1"), ("3", "1", "2"), ("3", "0", "3")]
    over = await hub_client.get("/rest/v2/user", headers=ana)
    assert (over.status, (await over.json())["error"]) == (403, "rate_limit_exceeded")
    assert over.headers["X-RateLimit-Remaining"] == "0"
    status = await (await hub_client.get("/rest/v2/rate_limit", headers=ana)).json()
    assert status["hourly_limit"] == 3 and status["remaining_hits"] == 0
    other = await hub_client.get("/rest/v2/users/bo", headers=bearer(people["bo_token"]))
    assert other.status == 200 and other.headers["X-RateLimit-Remaining"] == "2"
    missing = await hub_client.get("/rest/v2/nothing/here", headers=bearer(people["bo_token"]))
    assert missing.status == 404 and "X-RateLimit-Limit" in missing.headers


async def test_subscriptions_create_list_pause_resume_delete(hub_client, engine, hub_config,
                                                             people):
    ana, post = bearer(people["ana_token"]), people["post"]
    path = f"/rest/v2/things/{post}/subscriptions"
    made = await hub_client.post(path, headers=ana, json={"months": 3})
    assert made.status == 200
    assert (await made.json())["subscription"]["months_left"] == 3
    again = await hub_client.post(path, headers=ana)
    assert (again.status, (await again.json())["error"]) == (403, "subscribed")
    own = await hub_client.post(path, headers=bearer(people["bo_token"]))
    assert (own.status, (await own.json())["error"]) == (403, "thing_owner")
    bad = await hub_client.post(path, headers=bearer(people["cy_token"]), json={"months": 4})
    assert bad.status == 400
    listed = await (await hub_client.get("/rest/v2/user/subscriptions", headers=ana)).json()
    assert [(s["thing"]["id"], s["active"], s["months"]) for s in listed] == [(post, True, 3)]
    seen = await (await hub_client.get(f"/rest/v2/things/{post}", headers=ana)).json()
    assert seen["subscribed"] is True
    paused = await (await hub_client.put(path, headers=ana)).json()
    assert (paused["active"], paused["description"]) == (False, "Subscription paused")
    with engine.connect() as conn:
        assert conn.execute(select(subscriptions.c.cancelled_at)).scalar_one() is not None
    resumed = await (await hub_client.put(path, headers=ana)).json()
    assert resumed["active"] is True
    assert (await hub_client.delete(path, headers=ana)).status == 204
    assert (await hub_client.delete(path, headers=ana)).status == 404
    assert (await hub_client.put(path, headers=ana)).status == 404
    assert await (await hub_client.get("/rest/v2/user/subscriptions", headers=ana)).json() == []
    with engine.connect() as conn:
        assert verify(conn) == []


@pytest.mark.settings({"catalog.discovery_allow_private": True})
async def test_lookup_and_flattr_follow_a_pages_payment_link(hub_client, hub_config, people):
    page = web.Application()

    async def blog(request):
        link = ("https://hub.example/submit/auto?user_id=bo&title=Bo%27s+blog&url="
                + quote(str(request.url), safe=""))
        return web.Response(text=f'<html><head><link rel="payment" href="{link}"></head></html>',
                            content_type="text/html")

    page.router.add_get("/blog", blog)
    with serve(page) as site:
        url = f"{site}/blog"
        ana = bearer(people["ana_token"])
        before = await hub_client.get("/rest/v2/things/lookup", params={"url": url},
                                      allow_redirects=False)
        assert before.status == 404  # an auto-submit thing exists from its first flattr on
        done = await hub_client.post("/rest/v2/flattr", json={"url": url}, headers=ana)
        assert done.status == 200, await done.text()
        made = (await done.json())["thing"]
        # nobody claimed the blog's site: bo named in the link is its submitter, not its owner
        assert (made["title"], made["owner"]["username"]) == ("Bo's blog", None)
        after = await hub_client.get("/rest/v2/things/lookup", params={"url": url},
                                     allow_redirects=False)
        assert after.status == 302
        assert after.headers["Location"].endswith(f"/rest/v2/things/{made['id']}")


async def test_full_objects_and_not_acceptable_formats(hub_client, people):
    post = people["post"]
    small = await (await hub_client.get(f"/rest/v2/things/{post}")).json()
    assert set(small["owner"]) == {"type", "resource", "link", "username"}
    full = await (await hub_client.get(f"/rest/v2/things/{post}?full")).json()
    assert full["owner"]["username"] == "bo" and full["owner"]["firstname"] == ""
    assert "email" not in full["owner"]
    searched = await (await hub_client.get("/rest/v2/things/search?full=1",
                                           headers=bearer(people["ana_token"]))).json()
    assert "about" in searched["things"][0]["owner"]
    xml = await hub_client.get("/rest/v2/categories", headers={"Accept": "text/xml"})
    assert (xml.status, (await xml.json())["error"]) == (406, "not_acceptable")
    browser = await hub_client.get("/rest/v2/categories",
                                   headers={"Accept": "text/html,application/xml;q=0.9,*/*;q=0.8"})
    assert browser.status == 200
