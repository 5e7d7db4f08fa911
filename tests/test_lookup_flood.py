"""URL lookups fetch pages off the thread pool every page's database work uses: a flood of
lookups of a site that never answers leaves other requests answering, is capped (503 for
everyone past the global cap, 429 for one client past its own), and outcomes are cached. The
slow site is a local server holding every request until the test lets it go (the guard lets
loopback through: `catalog.discovery_allow_private`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from tests.rest_helpers import member, thing

pytest_plugins = ["tests.hub_fixtures"]

LOOKUP = "/rest/v2/things/lookup"


class Stalling:
    """A site whose pages answer only once `release` is set; counts the requests it got."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen: list[str] = []
        self.arrived = asyncio.Condition()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        async with self.arrived:
            self.seen.append(request.path)
            self.arrived.notify_all()
        await self.release.wait()
        return web.Response(text="<html><head></head></html>", content_type="text/html")

    async def wait_for(self, count: int) -> None:
        async with self.arrived:
            await self.arrived.wait_for(lambda: len(self.seen) >= count)


@pytest.fixture
async def stalling(aiohttp_server: Any) -> tuple[Stalling, str]:
    site = Stalling()
    server = await aiohttp_server(site.app(), host="127.0.0.1")
    return site, str(server.make_url("")).rstrip("/")


def lookups(concurrency: int, per_client: int) -> pytest.MarkDecorator:
    """The settings of a test whose lookups fetch the stalling site (on loopback)."""
    return pytest.mark.settings({"catalog": {
        "discovery_allow_private": True, "discovery_timeout_seconds": 10,
        "lookup_concurrency": concurrency, "lookup_per_client": per_client}})


@lookups(concurrency=12, per_client=12)
async def test_other_requests_answer_while_lookups_hang(hub_client, hub_config, engine,
                                                        stalling):
    site, base = stalling
    tid = thing(engine, member(engine, hub_config, "bo"), "https://bo.example/post")
    lookups = [asyncio.create_task(hub_client.get(LOOKUP, params={"url": f"{base}/p{n}"}))
               for n in range(12)]
    await site.wait_for(12)  # every lookup is fetching its page

    other = await hub_client.get(f"/rest/v2/things/{tid}")
    assert other.status == 200
    assert not any(task.done() for task in lookups)  # answered while all 12 still wait

    busy = await hub_client.get(LOOKUP, params={"url": f"{base}/one-more"})
    assert busy.status == 503
    assert (await busy.json())["error"] == "too_many_requests"

    site.release.set()
    replies = await asyncio.gather(*lookups)
    assert [reply.status for reply in replies] == [404] * 12  # no payment link on the pages
    again = await hub_client.get(LOOKUP, params={"url": f"{base}/p0"})
    assert again.status == 404 and len(site.seen) == 12  # the outcome was cached


@lookups(concurrency=12, per_client=2)
async def test_one_client_gets_429_past_its_own_limit(hub_client, stalling):
    site, base = stalling
    lookups = [asyncio.create_task(hub_client.get(LOOKUP, params={"url": f"{base}/p{n}"}))
               for n in range(2)]
    await site.wait_for(2)
    refused = await hub_client.get(LOOKUP, params={"url": f"{base}/p3"})
    assert refused.status == 429
    body = await refused.json()
    assert body["error"] == "too_many_requests" and "your address" in body["error_description"]
    site.release.set()
    assert [reply.status for reply in await asyncio.gather(*lookups)] == [404, 404]
