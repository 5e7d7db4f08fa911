"""The stream connectors' liveness (`connectors.stream_status`): what a stream process writes to
its Redis hash, how the hub reads it (a stale heartbeat is not connected, malformed fields are
unknown) and what `/healthz` says of each configured stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from base.config import with_overrides
from connectors import stream_status
from connectors.stream_status import STALE_HEARTBEATS, StatusWriter
from hub.app import create_app

pytest_plugins = ["tests.hub_fixtures"]

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_stream_writes_connected_last_event_and_lag(redis):
    writer = StatusWriter(redis, "discord")
    writer.connected()
    writer.event(NOW.replace(tzinfo=None) - timedelta(seconds=2), now=NOW)  # naive = UTC
    stored = {k.decode(): v.decode() for k, v in redis.hgetall("flattr:stream:discord").items()}
    assert stored["connected"] == "1"
    assert (stored["last_event_at"], stored["lag_seconds"]) == (NOW.isoformat(), "2.000")
    state = stream_status.read(redis, "discord", 15, now=NOW + timedelta(seconds=1))
    assert (state.connected, state.last_event_at, state.lag_seconds) == (True, NOW, 2.0)
    writer.disconnected()
    assert not stream_status.read(redis, "discord", 15).connected
    assert stream_status.read(redis, "discord", 15).last_event_at == NOW  # kept


def test_a_stale_heartbeat_counts_as_not_connected(redis):
    StatusWriter(redis, "discord").connected()
    updated = stream_status.read(redis, "discord", 10).updated_at
    limit = updated + timedelta(seconds=10 * STALE_HEARTBEATS)
    assert stream_status.read(redis, "discord", 10, now=limit).connected
    assert not stream_status.read(redis, "discord", 10,
                                  now=limit + timedelta(seconds=1)).connected
    StatusWriter(redis, "discord").heartbeat()
    assert stream_status.read(redis, "discord", 10).connected  # still "1", fresh again


def test_missing_or_malformed_fields_read_as_unknown(redis):
    never = stream_status.read(redis, "bluesky", 15)
    assert (never.connected, never.updated_at, never.last_event_at) == (False, None, None)
    redis.hset("flattr:stream:bluesky", mapping={
        "connected": "1", "updated_at": "yesterday", "lag_seconds": "nan",
        "last_event_at": "\xff"})
    state = stream_status.read(redis, "bluesky", 15)
    assert state.to_dict() == {"connected": False, "last_event_at": None, "lag_seconds": None,
                               "updated_at": None}


def test_a_stream_keeps_running_while_redis_is_down():
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    writer = StatusWriter(dead, "discord")
    writer.connected()
    writer.event(NOW)  # nothing raised


async def test_healthz_shows_each_configured_stream(aiohttp_client, hub_config, engine, redis):
    hub_config = with_overrides(hub_config, {"connectors.discord.bot_token": "bot-token"})
    client = await aiohttp_client(create_app(hub_config, engine, redis))
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "degraded"  # configured, never heard from
    assert health["streams"] == {"discord": {"connected": False, "last_event_at": None,
                                             "lag_seconds": None, "updated_at": None}}
    writer = StatusWriter(redis, "discord")
    writer.connected()
    writer.event(datetime.now(UTC) - timedelta(seconds=3))
    response = await client.get("/healthz")
    health = await response.json()
    assert (response.status, health["status"]) == (200, "ok")
    discord = health["streams"]["discord"]
    assert discord["connected"] is True and discord["lag_seconds"] >= 3
    assert datetime.fromisoformat(discord["last_event_at"]) <= datetime.now(UTC)
    stale = datetime.now(UTC) - timedelta(seconds=15 * STALE_HEARTBEATS + 5)
    redis.hset("flattr:stream:discord", "updated_at", stale.isoformat())
    health = await (await client.get("/healthz")).json()
    assert (health["status"], health["streams"]["discord"]["connected"]) == ("degraded", False)


async def test_healthz_says_stream_state_is_unknown_while_redis_is_down(
        aiohttp_client, hub_config, engine):
    hub_config = with_overrides(hub_config, {"connectors.discord.bot_token": "bot-token"})
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    client = await aiohttp_client(create_app(hub_config, engine, dead))
    response = await client.get("/healthz")
    health = await response.json()
    assert response.status == 200  # the database answers: events are still accepted
    assert (health["status"], health["queue"]) == ("degraded", "down")
    assert health["streams"] == {"discord": {"connected": None}}
