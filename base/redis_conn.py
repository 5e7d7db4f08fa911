"""Redis connections: the configured `redis.url`, else the embedded server of the data folder
(`base.embedded_redis`), shared by every hub process on that folder and stopped by the last
one to let go of it (at exit, or earlier with `release_embedded`)."""

from __future__ import annotations

import atexit
import sys
from pathlib import Path

from redis import Redis

from base.config import Settings, data_dir
from base.embedded_redis import EmbeddedRedis

_embedded: dict[Path, EmbeddedRedis] = {}


def connect(config: Settings) -> Redis:
    url = config.redis.url
    if url:
        return Redis.from_url(url)
    folder = data_dir(config).resolve()
    server = _embedded.get(folder)
    if server is None:
        server = EmbeddedRedis(folder)
        server.start(lambda line: print(f"flattr-hub: {line}", file=sys.stderr, flush=True))
        if not _embedded:
            atexit.register(release_embedded)
        _embedded[folder] = server
    return Redis.from_url(server.url)


def release_embedded() -> None:
    """Let go of the embedded servers this process uses (the last process stops each one)."""
    while _embedded:
        _, server = _embedded.popitem()
        server.release()


def socket_url(redis: Redis) -> str:
    """The URL of an embedded server's socket, for other processes to connect to."""
    kwargs = redis.connection_pool.connection_kwargs
    return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
