"""The one door out (base.public_net) on the Mastodon paths a member steers: an instance
name resolving to loopback is refused before any connection, a redirect to a loopback service
is not followed (that service sees no request), and the member reads a plain sentence, never
an exception's class name. The instance names resolve through a local fake DNS server
(`network.nameservers`)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web

from base.config import Settings, with_overrides
from base.public_net import Guard
from base.vault import vault
from connectors.mastodon import MastodonPoller
from connectors.poll_types import Account, TransientError
from hub.app import create_app
from members import oauth
from tests.fakes.dns_server import FakeDNS
from tests.web_helpers import post_form, sign_up

pytest_plugins = ["tests.hub_fixtures"]

CLASS_NAME = re.compile(r"[A-Z][a-z]+[A-Z][A-Za-z]*(Error|Exception)")  # MastodonNetworkError


@pytest.fixture
def evil_dns() -> Any:
    """evil.example resolves to loopback (IPv4 and an IPv4-compatible IPv6 spelling)."""
    with FakeDNS({("evil.example", "A"): ["127.0.0.1"],
                  ("evil.example", "AAAA"): ["::7f00:1"]}) as server:
        yield server


@pytest.fixture
def config(config: Settings, request: pytest.FixtureRequest) -> Settings:
    """Look-ups ask the test's fake DNS server, if it has one; Mastodon linking is on."""
    if "evil_dns" not in request.fixturenames:
        return config
    return with_overrides(config, {
        "network": {"nameservers": ["127.0.0.1"],
                    "dns_port": request.getfixturevalue("evil_dns").port},
        "connectors.mastodon.enabled": True})


class Internal:
    """A loopback-only service that records every request reaching it."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(f"{request.method} {request.path}")
        return web.json_response({"client_id": "stolen", "client_secret": "stolen"})


async def test_an_instance_resolving_to_loopback_is_refused(aiohttp_client, hub_config, engine,
                                                            redis, evil_dns):
    client = await aiohttp_client(create_app(hub_config, engine, redis))
    await sign_up(client, "ana")
    reply = await post_form(client, "/accounts/link/mastodon", {"instance": "evil.example"},
                            token_from="/accounts")
    page = await reply.text()
    assert reply.status == 400
    assert "evil.example is not a public address this hub may connect to" in page
    assert not CLASS_NAME.search(page)
    assert ("evil.example", "A") in evil_dns.questions  # checked through the guard's resolver


async def test_a_redirect_to_a_loopback_service_is_not_followed(aiohttp_client, aiohttp_server,
                                                                hub_config, engine, redis):
    """The instance (a local fake, reached through `api_base`) answers 307 to a loopback
    service: the hub does not follow it."""
    internal = Internal()
    inside = await aiohttp_server(internal.app(), host="127.0.0.1")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(str(inside.make_url("/internal-only" + request.path)))

    instance = web.Application()
    instance.router.add_route("*", "/{tail:.*}", redirect)
    fake = await aiohttp_server(instance, host="127.0.0.1")
    hub_config = with_overrides(hub_config, {"connectors.mastodon": dict(
        enabled=True, api_base=str(fake.make_url("")).rstrip("/"))})
    client = await aiohttp_client(create_app(hub_config, engine, redis))
    await sign_up(client, "ana")
    reply = await post_form(client, "/accounts/link/mastodon",
                            {"instance": "mastodon.example"}, token_from="/accounts")
    page = await reply.text()
    assert reply.status == 400
    assert "mastodon.example is not a public address" in page
    assert not CLASS_NAME.search(page)
    assert internal.requests == []


async def test_the_poller_refuses_an_instance_resolving_to_loopback(config, evil_dns):
    poller = MastodonPoller(vault=vault(config), guard=Guard.from_config(config))
    account = Account(1, "mastodon", "https://evil.example", "ana@evil.example", "1", "token",
                      None, None, 0, True, 0)
    with pytest.raises(TransientError) as caught:
        poller.fetch(account, 5)
    assert "evil.example is not a public address" in str(caught.value)
    assert not CLASS_NAME.search(str(caught.value))


async def test_the_token_exchange_refuses_an_instance_resolving_to_loopback(config, evil_dns):
    pending = oauth.Pending("link", "mastodon", "https://evil.example", 1, None,
                            "http://127.0.0.1/accounts/callback/mastodon")
    with pytest.raises(oauth.OAuthError, match="not at a public address"):
        await oauth.prove(config, pending, ("id", "secret"), "code")
