"""Login throttling in Redis: after `web.login_attempts` failures for one name or one address
within `web.login_window_seconds`, further attempts are refused until the window passes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis import Redis


class Throttle:
    def __init__(self, redis: Redis, config: Mapping[str, Any]) -> None:
        self._redis = redis
        self._limit = int(config["web"]["login_attempts"])
        self._window = int(config["web"]["login_window_seconds"])

    def _keys(self, name: str, address: str) -> list[str]:
        return [f"flattr:login-failures:name:{name.lower()}",
                f"flattr:login-failures:addr:{address}"]

    def blocked(self, name: str, address: str) -> bool:
        counts = self._redis.mget(self._keys(name, address))
        return any(int(count or 0) >= self._limit for count in counts)

    def failed(self, name: str, address: str) -> None:
        with self._redis.pipeline() as pipe:
            for key in self._keys(name, address):
                pipe.set(key, 0, ex=self._window, nx=True)  # the window starts at the first
                pipe.incr(key)
            pipe.execute()

    def succeeded(self, name: str, address: str) -> None:
        self._redis.delete(self._keys(name, address)[0])
