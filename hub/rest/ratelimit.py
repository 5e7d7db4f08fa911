"""The API's rate limit: at most `api.rate_limit` requests per caller (a valid access token, or
the client's address for calls without one or with an invalid one) in each fixed window of
`api.rate_window_seconds`, counted in Redis. Flattr's headers tell the caller where they stand.

The keys stay bounded: one per valid token or address per window, each expiring a minute after
its window ends; an IPv6 caller counts per /64 (what one host usually gets), so walking through
its own addresses makes no new buckets."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from redis import Redis

from base.config import Settings


def address_key(address: str) -> str:
    """The bucket of a client address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "addr:unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.IPv6Network((ip, 64), strict=False).network_address}/64"
    return f"addr:{ip}"


@dataclass(frozen=True)
class Usage:
    limit: int
    current: int
    reset: int  # Unix time the window ends

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.current)

    @property
    def exceeded(self) -> bool:
        return self.current > self.limit

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Current": str(self.current),
                "X-RateLimit-Reset": str(self.reset)}


class RateLimiter:
    def __init__(self, redis: Redis, config: Settings) -> None:
        self._redis = redis
        self._limit = config.api.rate_limit
        self._window = config.api.rate_window_seconds

    def _key(self, who: str) -> tuple[str, int]:
        start = int(time.time()) // self._window * self._window
        return f"flattr:api-rate:{who}:{start}", start + self._window

    def hit(self, who: str) -> Usage:
        """Count one request of `who`."""
        key, reset = self._key(who)
        with self._redis.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, self._window + 60)
            current, _ = pipe.execute()
        return Usage(self._limit, int(current), reset)

    def peek(self, who: str) -> Usage:
        """Where `who` stands, without counting a request."""
        key, reset = self._key(who)
        return Usage(self._limit, int(self._redis.get(key) or 0), reset)
