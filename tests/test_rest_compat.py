"""REST v2 compatibility beyond the documented examples: every route answers with and without
a trailing slash, scopes may be separated by commas, every thing the API shows (a web page, a
GitHub repository's thing) is found by lookup and search with the URL it shows, and a member
flattrs a platform thing through the API under the money rules."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import func, select

from hub.rest.common import PREFIX
from ledger.schema import flattrs
from ledger.verify import verify
from members.apps import parse_scopes
from tests.rest_helpers import REPO, a_github_repository_of_bo, bearer, member, thing, token

pytest_plugins = ["tests.hub_fixtures"]


def test_scopes_may_be_separated_by_commas_or_spaces():
    assert parse_scopes("thing,flattr") == parse_scopes("flattr thing") == ("flattr", "thing")
    assert parse_scopes("flattr, email") == ("flattr", "email")


async def test_every_route_answers_with_and_without_a_trailing_slash(hub_client, engine,
                                                                      hub_config):
    routes = {(route.method, route.resource.canonical)
              for route in hub_client.server.app.router.routes()
              if route.resource is not None and route.resource.canonical.startswith(PREFIX)}
    assert len(routes) > 40
    for method, path in routes:
        twin = path[:-1] if path.endswith("/") else path + "/"
        assert (method, twin) in routes, (method, path)
    ana = bearer(token(engine, member(engine, hub_config, "ana")))
    made = await hub_client.post("/rest/v2/things/", headers=ana,
                                 json={"url": "https://ana.example/"})
    assert made.status == 201
    tid = (await made.json())["id"]
    for path in (f"/rest/v2/things/{tid}/", "/rest/v2/categories/", "/rest/v2/user/"):
        assert (await hub_client.get(path, headers=ana)).status == 200, path


async def test_lookup_and_search_find_every_thing_the_api_shows(hub_client, engine,
                                                                 hub_config):
    bo = member(engine, hub_config, "bo")
    thing(engine, bo, "https://Bo.example:443/Post?x=1", title="A post", category="audio",
          language="sv_SE")
    a_github_repository_of_bo(engine, bo)
    shown = (await (await hub_client.get("/rest/v2/things/search")).json())["things"]
    assert {t["url"] for t in shown} == {"https://bo.example/Post?x=1", REPO}
    for one in shown:
        for url in (one["url"], one["link"], one["resource"]):  # every URL the API shows
            found = await hub_client.get("/rest/v2/things/lookup", params={"url": url},
                                         allow_redirects=False)
            assert found.status == 302, url
            assert urlsplit(found.headers["Location"]).path == f"/rest/v2/things/{one['id']}"
        for params in ({"url": one["url"]}, {"category": one["category"]},
                       {"language": one["language"]}, {"user": "bo"}):
            result = await (await hub_client.get("/rest/v2/things/search",
                                                 params=params)).json()
            assert one["id"] in [t["id"] for t in result["things"]], params
    rest = await (await hub_client.get("/rest/v2/things/search",
                                       params={"category": "rest"})).json()
    assert [t["url"] for t in rest["things"]] == [REPO]


async def test_a_member_flattrs_a_platform_thing_through_the_api_once_a_month(
        hub_client, engine, hub_config):
    bo = member(engine, hub_config, "bo")
    ana = member(engine, hub_config, "ana")
    a_github_repository_of_bo(engine, bo)
    headers = bearer(token(engine, ana))
    done = await hub_client.post("/rest/v2/flattr", json={"url": REPO}, headers=headers)
    assert done.status == 200, await done.text()
    repo = (await done.json())["thing"]["id"]
    again = await hub_client.post(f"/rest/v2/things/{repo}/flattr", headers=headers)
    assert (again.status, (await again.json())["error"]) == (403, "flattr_once")
    own = await hub_client.post(f"/rest/v2/things/{repo}/flattr",
                                headers=bearer(token(engine, bo)))
    assert (own.status, (await own.json())["error"]) == (403, "flattr_owner")
    with engine.connect() as conn:
        counted = conn.execute(select(func.count()).where(
            flattrs.c.giver_id == ana, flattrs.c.thing_id == repo)).scalar_one()
        assert counted == 1 and verify(conn) == []


async def test_full_gives_whole_things_and_users_in_every_flattr_list(hub_client, engine,
                                                                      hub_config):
    bo, ana = member(engine, hub_config, "bo"), member(engine, hub_config, "ana")
    post = thing(engine, bo, "https://bo.example/post", title="Post")
    headers = bearer(token(engine, ana))
    assert (await hub_client.post(f"/rest/v2/things/{post}/flattr", headers=headers)).status \
        == 200
    for path in ("/rest/v2/user/flattrs", "/rest/v2/users/ana/flattrs",
                 f"/rest/v2/things/{post}/flattrs"):
        small = (await (await hub_client.get(path, headers=headers)).json())[0]
        assert "language" not in small["thing"] and "firstname" not in small["owner"], path
        full = (await (await hub_client.get(path, params={"full": "1"}, headers=headers))
                .json())[0]
        assert (full["thing"]["id"], full["thing"]["language"]) == (post, "en_GB"), path
        assert full["thing"]["owner"]["firstname"] == "" and full["owner"]["username"] == "ana"
        assert full["owner"]["url"].endswith("/u/ana"), path
