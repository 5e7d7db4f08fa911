"""The long-lived stream connectors: processes that hold a connection open to a platform and
store what it pushes, rather than answering webhooks or polling. `flattr-hub up` runs each
configured one as a supervised child (`flattr_hub.supervisor`) and the hub shows their liveness
(`connectors.stream_status`) on `/ops` and `/healthz`.

A stream joins by one entry in `STREAMS`: its name (also its status key), how it is announced,
whether the configuration turns it on, and the `flattr-hub` command that runs it on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from connectors.stream_status import StreamState, heartbeat_seconds, read


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    label: str
    configured: Callable[[Mapping[str, Any]], bool]
    command: tuple[str, ...]


def _discord(config: Mapping[str, Any]) -> bool:
    return bool(config["connectors"]["discord"].get("bot_token"))


def _bluesky(config: Mapping[str, Any]) -> bool:
    section = config["connectors"].get("bluesky")
    return isinstance(section, Mapping) and bool(section.get("enabled"))


STREAMS = (
    Stream("discord", "discord bot", _discord, ("discord-bot",)),
    Stream("bluesky", "bluesky stream", _bluesky, ("bluesky-stream",)),
)


def configured_streams(config: Mapping[str, Any]) -> list[Stream]:
    """The streams the configuration turns on, in `STREAMS` order."""
    return [stream for stream in STREAMS if stream.configured(config)]


def stream_states(redis: Redis, config: Mapping[str, Any],
                  now: datetime | None = None) -> list[tuple[Stream, StreamState | None]]:
    """Each configured stream with its state, or None for all of them when Redis does not
    answer (unknown, not disconnected)."""
    streams = configured_streams(config)
    heartbeat = heartbeat_seconds(config)
    try:
        return [(stream, read(redis, stream.name, heartbeat, now)) for stream in streams]
    except RedisError:
        return [(stream, None) for stream in streams]
