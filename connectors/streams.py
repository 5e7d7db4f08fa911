"""The long-lived stream listeners (a platform's `Platform.stream`: the Discord gateway bot, the
Bluesky Jetstream consumer): processes that hold a connection open to a platform and store what
it pushes. `flattr-hub up` runs each configured one as a supervised child
(`flattr_hub.supervisor`) and the hub shows their liveness (`connectors.stream_status`, keyed by
the platform's name) on `/ops` and `/healthz`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError

from base.config import Settings
from connectors import registry
from connectors.stream_status import StreamState, heartbeat_seconds, read


@dataclass(frozen=True, slots=True)
class StreamListener:
    """One configured listener: its status name, how it is announced ("discord bot", from its
    command `discord-bot`) and the `flattr-hub` command that runs it."""

    name: str
    label: str
    command: tuple[str, ...]


def configured_streams(config: Settings) -> list[StreamListener]:
    """The listeners the configuration turns on, in registry order."""
    return [StreamListener(platform.name, " ".join(platform.stream.command).replace("-", " "),
                           platform.stream.command)
            for platform in registry.streams(config) if platform.stream is not None]


def stream_states(redis: Redis, config: Settings,
                  now: datetime | None = None
                  ) -> list[tuple[StreamListener, StreamState | None]]:
    """Each configured listener with its state, or None for all of them when Redis does not
    answer (unknown, not disconnected)."""
    streams = configured_streams(config)
    heartbeat = heartbeat_seconds(config)
    try:
        return [(stream, read(redis, stream.name, heartbeat, now)) for stream in streams]
    except RedisError:
        return [(stream, None) for stream in streams]
