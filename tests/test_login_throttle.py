"""Login throttling, with real parallel requests from real (loopback) addresses: attempts are
counted before the password is checked, so 24 concurrent wrong passwords get at most
`web.login_attempts` real checks; a name attacked from many addresses slows down instead of
locking its owner out."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from hub.web.throttle import Throttle
from tests.web_helpers import CSRF, PASSWORD, sign_up

pytest_plugins = ["tests.hub_fixtures"]

WRONG = "Wrong name or password."


# The delay grows from 10 ms to at most 50 ms in the tests marked with it (1 s to 15 s by
# default).
QUICK = {"web.login_delay_seconds": 0.01, "web.login_max_delay_seconds": 0.05}


async def attempt_from(client, address: str, name: str, password: str) -> int:
    """One login attempt from the loopback `address` in a browser of its own; the status."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        page = await browser.get(client.make_url("/login"))
        token = CSRF.search(await page.text()).group(1)
        reply = await browser.post(client.make_url("/login"), allow_redirects=False, data={
            "csrf_token": token, "name": name, "password": password})
        return reply.status


@pytest.mark.settings(QUICK)
async def test_concurrent_wrong_passwords_get_at_most_the_limit_of_checks(hub_client, hub_config):
    await sign_up(hub_client, "ana")
    hub_client.session.cookie_jar.clear()
    page = await hub_client.get("/login")
    token = CSRF.search(await page.text()).group(1)

    async def wrong() -> tuple[int, str]:
        reply = await hub_client.post("/login", allow_redirects=False, data={
            "csrf_token": token, "name": "ana", "password": "not the password"})
        return reply.status, await reply.text()

    answers = await asyncio.gather(*(wrong() for _ in range(24)))
    checked = [status for status, text in answers if WRONG in text]
    assert len(checked) <= hub_config.web.login_attempts
    assert all(status == 429 for status, text in answers if WRONG not in text)
    assert len(checked) + sum(status == 429 for status, _ in answers) == 24
    assert await attempt_from(hub_client, "127.0.0.1", "ana", PASSWORD) == 429


@pytest.mark.settings(QUICK)
async def test_the_owner_still_gets_in_from_a_fresh_address(hub_client, hub_config):
    await sign_up(hub_client, "ana")
    limit = hub_config.web.login_attempts
    statuses = await asyncio.gather(*(
        attempt_from(hub_client, f"127.0.0.{n}", "ana", "wrong password!")
        for n in range(2, limit + 4)))
    assert statuses == [400] * (limit + 2)  # slowed down, never locked
    assert await attempt_from(hub_client, "127.0.1.1", "ana", PASSWORD) == 303


@pytest.mark.settings({**QUICK, "web.login_address_attempts": 3})
async def test_one_address_is_limited_across_names(hub_client):
    statuses = [await attempt_from(hub_client, "127.0.2.1", f"name{n}", "wrong password!")
                for n in range(5)]
    assert statuses == [400] * 3 + [429] * 2
    assert await attempt_from(hub_client, "127.0.2.2", "name4", "wrong password!") == 400


def test_the_delay_per_name_grows_and_is_capped(redis, hub_config):
    throttle = Throttle(redis, hub_config)
    limit = hub_config.web.login_attempts
    delays = [throttle.attempt("Ana", f"192.0.2.{n}").delay for n in range(limit + 6)]
    assert delays[:limit] == [0] * limit
    assert delays[limit:] == [1, 2, 4, 8, 15, 15]
    throttle.succeeded("ana", "192.0.2.99")
    assert throttle.attempt("ana", "192.0.2.99").delay == 0
