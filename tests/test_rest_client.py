"""The issue's "done when": a Flattr API v2 client written for api.flattr.com (plain
`requests`, a base URL), pointed at a hub served on a free local port, gets a token through
the OAuth flow (requests-oauthlib, a member consenting in a browser-like session), looks a
thing up, flattrs it and lists the member's flattrs."""

from __future__ import annotations

import re
from typing import Any

import requests
from requests_oauthlib import OAuth2Session

from base.config import with_overrides
from hub.app import create_app
from ledger import accounts
from members.apps import register_app
from members.logins import sign_up
from tests.fakes.server import serve
from tests.rest_helpers import member, thing
from tests.web_helpers import PASSWORD

pytest_plugins = ["tests.hub_fixtures"]

CALLBACK = "https://player.example/flattr-callback"


class FlattrClient:
    """A small Flattr REST API v2 client, as an app written for Flattr would have it."""

    def __init__(self, access_token: str, base_url: str = "https://api.flattr.com") -> None:
        self.api = base_url.rstrip("/") + "/rest/v2"
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {access_token}",
                                  "Accept": "application/json"})

    def lookup(self, url: str) -> dict[str, Any] | None:
        """The thing of `url` (Flattr answers 302 to it), or None."""
        reply = self.http.get(f"{self.api}/things/lookup/", params={"url": url}, timeout=10)
        if reply.status_code == 404:
            return None
        reply.raise_for_status()
        return reply.json()

    def flattr(self, thing_id: int) -> dict[str, Any]:
        reply = self.http.post(f"{self.api}/things/{thing_id}/flattr", timeout=10)
        reply.raise_for_status()
        return reply.json()

    def flattrs(self, count: int = 30, page: int = 1) -> list[dict[str, Any]]:
        reply = self.http.get(f"{self.api}/user/flattrs", params={"count": count, "page": page},
                              timeout=10)
        reply.raise_for_status()
        return reply.json()


def consent_in_browser(base: str, authorization_url: str) -> str:
    """Log in as ana, allow the app on the consent page; the URL it sends the browser to."""
    browser = requests.Session()
    login_page = browser.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
    browser.post(f"{base}/login", data={"csrf_token": token, "name": "ana",
                                        "password": PASSWORD}, timeout=10)
    page = browser.get(authorization_url, timeout=10)
    assert page.status_code == 200, page.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    answer = browser.post(f"{base}/oauth/authorize", data={**form, "decision": "allow"},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    return answer.headers["Location"]


def test_a_flattr_v2_client_looks_up_flattrs_and_lists(hub_config, engine, redis, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the test server speaks plain http
    bo = member(engine, hub_config, "bo")
    post = thing(engine, bo, "https://bo.example/episode-1", title="Episode 1")
    with engine.begin() as conn:
        ana = sign_up(conn, "ana", PASSWORD)
        accounts.set_budget(conn, ana, 500, hub_config.money)
        accounts.credit_funds(conn, ana, 2000, "test", "test:ana")
        app = register_app(conn, bo, "Podcast player", CALLBACK)
    with serve(lambda base: create_app(  # the links the client follows
            with_overrides(hub_config, {"hub.base_url": base}), engine, redis)) as base:
        oauth = OAuth2Session(app.app.client_id, redirect_uri=CALLBACK, scope=["flattr"])
        url, _state = oauth.authorization_url(f"{base}/oauth/authorize")
        back = consent_in_browser(base, url)
        assert back.startswith(CALLBACK)
        granted = oauth.fetch_token(f"{base}/oauth/token", authorization_response=back,
                                    client_secret=app.client_secret)
        assert granted["token_type"] == "bearer" and granted["scope"] == ["flattr"]

        client = FlattrClient(granted["access_token"], base_url=base)
        found = client.lookup("https://bo.example/episode-1")
        assert found is not None and (found["id"], found["title"]) == (post, "Episode 1")
        assert found["flattred"] is False
        assert client.lookup("https://bo.example/unknown") is None
        done = client.flattr(found["id"])
        assert (done["message"], done["thing"]["id"]) == ("ok", post)
        again = client.http.post(f"{client.api}/things/{post}/flattr", timeout=10)
        assert (again.status_code, again.json()["error"]) == (403, "flattr_once")
        listed = client.flattrs()
        assert [(f["thing"]["id"], f["owner"]["username"]) for f in listed] == [(post, "ana")]
        assert int(again.headers["X-RateLimit-Remaining"]) < int(again.headers["X-RateLimit-Limit"])
        assert client.lookup("https://bo.example/episode-1")["flattred"] is True
        thing_scope = client.http.post(f"{client.api}/things",
                                       json={"url": "https://ana.example/"}, timeout=10)
        assert (thing_scope.status_code, thing_scope.json()["error"]) == (
            403, "insufficient_scope")
