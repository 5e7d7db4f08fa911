"""A published Flattr REST API v2 client library, `flattrclient` (PyPI, written for
api.flattr.com and flattr.com/oauth), run unchanged against a hub served on a free local port:
its requests reach the hub through an HTTP transport mounted on the library's own
`requests` session. It authorizes (scopes separated by commas, as its docstring says), gets a
token, reads users, creates, updates, looks up, searches and deletes things, flattrs a button
thing and a GitHub repository's thing, lists flattrs, subscribes, pauses, resumes and
unsubscribes, and reads activities; the money of its flattrs is in the ledger."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import flattrclient.api
import flattrclient.oauth
import pytest
import requests
from flattrclient.exc import FlattrApiError, NotFoundError
from requests.adapters import HTTPAdapter
from sqlalchemy import select

from base.config import with_overrides
from hub.app import create_app
from ledger import accounts
from ledger.schema import flattrs
from ledger.verify import verify
from members.apps import register_app
from members.logins import sign_up
from tests.fakes.server import serve
from tests.rest_helpers import REPO, a_github_repository_of_bo, member, thing
from tests.test_rest_client import CALLBACK, consent_in_browser
from tests.web_helpers import PASSWORD

pytest_plugins = ["tests.hub_fixtures"]

FLATTR_HOSTS = ("https://api.flattr.com/", "https://flattr.com/")


class ToHub(HTTPAdapter):
    """A transport that sends what the library addresses to Flattr to the hub instead."""

    def __init__(self, hub: str) -> None:
        super().__init__()
        self.hub = hub

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url)
        request.url = self.hub + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def to_hub(session: requests.Session, hub: str) -> None:
    for prefix in FLATTR_HOSTS:
        session.mount(prefix, ToHub(hub))


@pytest.fixture
def hub(hub_config, engine, redis):
    bo = member(engine, hub_config, "bo")
    post = thing(engine, bo, "https://bo.example/episode-1", title="Episode 1", tags="audio")
    a_github_repository_of_bo(engine, bo)
    with engine.begin() as conn:
        ana = sign_up(conn, "ana", PASSWORD)
        accounts.set_budget(conn, ana, 500, hub_config.money)
        accounts.credit_funds(conn, ana, 2000, "test", "test:ana")
        app = register_app(conn, bo, "Podcast player", CALLBACK)
    with serve(lambda base: create_app(  # the links the answers hold
            with_overrides(hub_config, {"hub.base_url": base}), engine, redis)) as base:
        yield {"base": base, "app": app, "post": post, "ana": ana}


def authorized(base: str, app: Any) -> flattrclient.api.FlattrApi:
    """The library's OAuth flow: its authorize URL (consented to in a browser), its token."""
    auth = flattrclient.oauth.get()
    to_hub(auth._session, base)
    url = auth.authorize(app.app.client_id, "flattr,thing,email,extendedread", CALLBACK)
    assert url.startswith("https://flattr.com/oauth/authorize?")
    back = consent_in_browser(base, url.replace("https://flattr.com", base, 1))
    code = parse_qs(urlsplit(back).query)["code"][0]
    auth.set_auth(app.app.client_id, app.client_secret)
    granted = auth.token(code, CALLBACK)
    assert granted["token_type"] == "bearer"
    api = flattrclient.api.get(granted["access_token"])
    to_hub(api._session, base)
    return api


def test_the_published_client_library_works_against_the_hub(hub, engine):
    api = authorized(hub["base"], hub["app"])

    me = api.users.get("ana")
    assert (me.username, me.url) == ("ana", f"{hub['base']}/u/ana")
    with pytest.raises(NotFoundError):
        api.users.get("nobody")
    bo_things = list(api.users("bo").get_things())
    assert hub["post"] in [t.id for t in bo_things] and len(bo_things) == 2  # and his repository
    assert {t.language for t in bo_things} == {"en_GB"}

    mine = api.things.new(url="https://ana.example/blog/1", title="Draft", tags=["a", "b"],
                          category="text")
    mine.commit()
    assert mine.id is not None
    listed = list(api.authenticated.get_things())  # submitted by ana; ana.example is unclaimed
    assert [(t.id, t.owner["username"]) for t in listed] == [(mine.id, None)]
    mine.title = "First post"
    assert api.things.get(str(mine.id)) is not None and mine.commit()["message"] == "ok"
    found = api.things.lookup("https://ana.example/blog/1")
    assert (found.id, found.title, found.tags) == (mine.id, "First post", ["a", "b"])
    assert [t.id for t in api.things.search(query="first").things] == [mine.id]
    assert [t.id for t in api.things.search(tags="a & b ! c").things] == [mine.id]
    assert list(api.things.search(tags="a & c").things) == []
    many = list(api.things.get(str(mine.id), str(hub["post"])))
    assert [t.id for t in many] == [mine.id, hub["post"]]
    assert mine.delete() == ""
    with pytest.raises(NotFoundError):
        api.things.lookup("https://ana.example/blog/1")

    episode = api.things.get(str(hub["post"]))
    assert episode.support()["message"] == "ok"
    with pytest.raises(FlattrApiError):  # flattr_once: rule 1
        episode.support()
    repository = api.things.lookup(REPO)  # a GitHub repository's thing, by the URL it shows
    assert repository.url == REPO and repository.category == "rest"
    assert [t.id for t in api.things.search(url=REPO).things] == [repository.id]
    assert repository.id in [t.id for t in api.things.search(category="rest").things]
    assert repository.support()["thing"]["id"] == repository.id
    with pytest.raises(FlattrApiError):
        repository.support()

    given = list(api.authenticated.get_flattrs())
    assert {f.thing["id"] for f in given} == {hub["post"], repository.id}
    assert [f.owner["username"] for f in episode.get_flattrs()] == ["ana"]
    assert {f.thing["id"] for f in api.users("ana").get_flattrs()} == {hub["post"],
                                                                        repository.id}

    assert episode.subscribe()["message"] == "ok"
    subscribed = list(api.authenticated.get_subscriptions())
    assert [(s.thing.id, s.active) for s in subscribed] == [(hub["post"], True)]
    assert episode.pause_subscription()["message"] == "paused"
    assert episode.pause_subscription()["message"] == "started"
    assert episode.unsubscribe() == ""
    assert list(api.authenticated.get_subscriptions()) == []

    activities = api.authenticated.get_activities()
    assert {item["verb"] for item in activities["items"]} == {"like"}
    assert len(activities["items"]) == 2
    assert api.users.get("bo").username == "bo"  # the Accept it left on the session still works

    with engine.connect() as conn:
        sources = conn.execute(select(flattrs.c.thing_id, flattrs.c.source)
                               .where(flattrs.c.giver_id == hub["ana"])).all()
        assert sorted(sources) == sorted([(hub["post"], "button"), (repository.id, "button")])
        assert verify(conn) == []
