"""Liveness of the long-lived stream connectors (the Discord gateway bot, the Bluesky Jetstream
consumer), kept in Redis so that the hub can show it on `/ops` and `/healthz`.

One hash per stream, key `flattr:stream:<name>`, written by the stream's own process:
- `connected`: "1" while its connection is up, "0" once it closed;
- `last_event_at`: when it last stored an event (ISO 8601, UTC);
- `lag_seconds`: how far behind that event was when it was stored (float);
- `updated_at`: when the process last wrote, at least every `streams.heartbeat_seconds`.

A process that died writes nothing more, so a hash whose `updated_at` is older than
`STALE_HEARTBEATS` heartbeats counts as not connected whatever its `connected` says. Writing is
best effort: a stream keeps running while Redis is down (its events go to the database).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT

from base.config import Settings

KEY = "flattr:stream:{}"
STALE_HEARTBEATS = 3

log = structlog.get_logger(__name__)


def key(name: str) -> str:
    return KEY.format(name)


def heartbeat_seconds(config: Settings) -> float:
    return config.streams.heartbeat_seconds


def _now() -> datetime:
    return datetime.now(UTC)


class StatusWriter:
    """What a stream process writes about itself. Every call also refreshes `updated_at`;
    a Redis error is logged once per outage and otherwise ignored."""

    def __init__(self, redis: Redis, name: str) -> None:
        self.redis = redis
        self.name = name
        self._failing = False

    def connected(self) -> None:
        self._write({"connected": "1"})

    def disconnected(self) -> None:
        self._write({"connected": "0"})

    def heartbeat(self) -> None:
        self._write({})

    def event(self, occurred_at: datetime, now: datetime | None = None) -> None:
        """An event that happened at `occurred_at` (aware, or naive UTC) was stored now."""
        now = now or _now()
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=UTC)
        lag = max(0.0, (now - occurred_at).total_seconds())
        self._write({"last_event_at": now.isoformat(), "lag_seconds": f"{lag:.3f}"}, now)

    def _write(self, fields: dict[EncodableT, EncodableT], now: datetime | None = None) -> None:
        mapping = {**fields, "updated_at": (now or _now()).isoformat()}
        try:
            self.redis.hset(key(self.name), mapping=mapping)
        except RedisError as exc:
            if not self._failing:
                log.warning("stream_status_unwritable", stream=self.name,
                            error=exc.__class__.__name__)
            self._failing = True
        else:
            self._failing = False


@dataclass(frozen=True, slots=True)
class StreamState:
    """What the hub knows of one stream; `connected` is False when its status is stale."""

    name: str
    connected: bool
    last_event_at: datetime | None
    lag_seconds: float | None
    updated_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"connected": self.connected,
                "last_event_at": _iso(self.last_event_at),
                "lag_seconds": self.lag_seconds,
                "updated_at": _iso(self.updated_at)}


def read(redis: Redis, name: str, heartbeat: float, now: datetime | None = None) -> StreamState:
    """The state of stream `name` (raises RedisError when Redis does not answer). Fields that
    are missing or malformed read as unknown (None), never as an error."""
    raw = {_text(k): _text(v) for k, v in redis.hgetall(key(name)).items()}
    updated = _time(raw.get("updated_at"))
    fresh = updated is not None and (now or _now()) - updated <= timedelta(
        seconds=heartbeat * STALE_HEARTBEATS)
    return StreamState(name=name, connected=fresh and raw.get("connected") == "1",
                       last_event_at=_time(raw.get("last_event_at")),
                       lag_seconds=_float(raw.get("lag_seconds")), updated_at=updated)


def _time(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _float(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _text(value: bytes | str) -> str:
    """A hash field or value as text (Redis answers bytes unless told to decode)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
