"""Login throttling in Redis. Every attempt is counted before the password is checked (one
atomic step), so parallel attempts cannot slip past a limit:

- per (name, address): after `web.login_attempts` attempts within `web.login_window_seconds`,
  that address gets 429 for that name until the window passes;
- per address: after `web.login_address_attempts` attempts for any names, likewise;
- per name, from all addresses together: no lock-out (an attacker could lock the owner out),
  but each attempt beyond `web.login_attempts` waits first, `web.login_delay_seconds` doubling
  up to `web.login_max_delay_seconds`; the owner's right password still gets in.

A successful login clears its name's and its (name, address) pair's counts and takes itself
off the address's. Every key expires with its window, and names are hashed, so the keys stay
few and small."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis import Redis

from base.config import Settings
from hub.rest.ratelimit import address_key

PREFIX = "flattr:login"


@dataclass(frozen=True)
class Attempt:
    """What to do with one login attempt: refuse it for `retry_after` seconds, or check the
    password after waiting `delay` seconds."""

    refused: bool
    retry_after: int
    delay: float


class Throttle:
    def __init__(self, redis: Redis, config: Settings) -> None:
        web = config.web
        self._redis = redis
        self._limit = web.login_attempts
        self._address_limit = web.login_address_attempts
        self._window = web.login_window_seconds
        self._delay = web.login_delay_seconds
        self._max_delay = web.login_max_delay_seconds

    def _keys(self, name: str, address: str) -> tuple[str, str, str]:
        who = hashlib.sha256(name.strip().lower().encode()).hexdigest()[:32]
        where = address_key(address)
        return f"{PREFIX}:pair:{who}:{where}", f"{PREFIX}:{where}", f"{PREFIX}:name:{who}"

    def attempt(self, name: str, address: str) -> Attempt:
        """Count one attempt of `name` from `address` and decide about it."""
        keys = self._keys(name, address)
        with self._redis.pipeline() as pipe:  # MULTI/EXEC: counted together, atomically
            for key in keys:
                pipe.set(key, 0, ex=self._window, nx=True)  # the window starts at the first
                pipe.incr(key)
            pipe.ttl(keys[0])
            pipe.ttl(keys[1])
            *counts, pair_ttl, address_ttl = pipe.execute()
        pair, by_address, by_name = counts[1], counts[3], counts[5]
        if pair > self._limit or by_address > self._address_limit:
            wait = max(pair_ttl if pair > self._limit else 0,
                       address_ttl if by_address > self._address_limit else 0)
            return Attempt(True, max(int(wait), 1), 0)
        excess = by_name - self._limit
        delay = 0 if excess <= 0 else min(self._max_delay, self._delay * 2 ** min(excess - 1, 30))
        return Attempt(False, 0, delay)

    def succeeded(self, name: str, address: str) -> None:
        pair, by_address, by_name = self._keys(name, address)
        with self._redis.pipeline() as pipe:
            pipe.delete(pair, by_name)
            pipe.decr(by_address)
            pipe.execute()
