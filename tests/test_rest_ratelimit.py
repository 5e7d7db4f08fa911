"""The REST API's rate limit cannot be dodged: a made-up Bearer token gets 401 at once on every
route (and counts against the caller's address), anonymous callers share one bucket per
address (per /64 for IPv6), and the limiter's Redis keys stay few and expire."""

from __future__ import annotations

import secrets

import pytest

from hub.rest.ratelimit import RateLimiter, address_key
from tests.rest_helpers import bearer, member, thing, token

pytest_plugins = ["tests.hub_fixtures"]

ROUTES = ("/rest/v2/categories", "/rest/v2/languages", "/rest/v2/things/{post}",
          "/rest/v2/users/bo", "/rest/v2/things/search?query=tune", "/rest/v2/rate_limit",
          "/rest/v2/things/lookup?url=https%3A%2F%2Fbo.example%2Fpost", "/rest/v2/user",
          "/rest/v2/nothing/here")


@pytest.fixture
def post(engine, hub_config):
    bo = member(engine, hub_config, "bo")
    return thing(engine, bo, "https://bo.example/post", title="Bo's post")


async def test_a_made_up_token_gets_401_on_every_route(hub_client, post):
    for route in ROUTES:
        reply = await hub_client.get(route.format(post=post),
                                     headers=bearer(secrets.token_urlsafe(32)),
                                     allow_redirects=False)
        assert reply.status == 401, (route, reply.status)
        assert (await reply.json())["error"] == "unauthorized"
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.settings({"api.rate_limit": 5})
async def test_made_up_tokens_share_the_address_bucket_and_make_no_keys(hub_client, hub_config,
                                                                        redis, post):
    seen = []
    for _ in range(40):
        reply = await hub_client.get(f"/rest/v2/things/{post}",
                                     headers=bearer(secrets.token_urlsafe(16)))
        seen.append(reply.status)
    assert seen[:5] == [401] * 5 and set(seen[5:]) == {403}
    anonymous = await hub_client.get(f"/rest/v2/things/{post}")
    assert anonymous.status == 403 and anonymous.headers["X-RateLimit-Remaining"] == "0"
    keys = redis.keys("flattr:api-rate:*")
    assert len(keys) == 1
    assert 0 < redis.ttl(keys[0]) <= hub_config.api.rate_window_seconds + 60


@pytest.mark.settings({"api.rate_limit": 3})
async def test_anonymous_callers_are_limited_per_address(hub_client, hub_config, post, engine):
    for remaining in ("2", "1", "0"):
        reply = await hub_client.get(f"/rest/v2/things/{post}")
        assert reply.status == 200 and reply.headers["X-RateLimit-Remaining"] == remaining
    over = await hub_client.get("/rest/v2/categories")
    assert (over.status, (await over.json())["error"]) == (403, "rate_limit_exceeded")
    ana = member(engine, hub_config, "ana")
    mine = await hub_client.get("/rest/v2/user", headers=bearer(token(engine, ana)))
    assert mine.status == 200 and mine.headers["X-RateLimit-Remaining"] == "2"


def test_ipv6_callers_are_counted_per_64_and_keys_expire(redis, hub_config):
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::7")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == address_key("192.0.2.7")
    assert address_key("192.0.2.7") != address_key("192.0.2.8")
    limiter = RateLimiter(redis, hub_config)
    for n in range(50):
        limiter.hit(address_key(f"2001:db8:1:2::{n:x}"))
    [key] = redis.keys("flattr:api-rate:*")
    assert int(redis.get(key)) == 50 and redis.ttl(key) > 0
