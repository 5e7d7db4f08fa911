"""Page fetches made for the hub's callers (a URL lookup, flattring a URL the hub does not know
yet): bounded and cached, so that a flood of them cannot slow anything else down.

The fetch itself is asynchronous (`catalog.discovery`): no thread of the pool every page's
database work runs on waits for a slow site. On top of that, in one hub process:

- at most `catalog.lookup_concurrency` fetches run at once, and at most
  `catalog.lookup_per_client` for one client address; a caller beyond either limit is refused
  at once (`Busy`: 503, or 429 for the one client) instead of being queued;
- the outcome for a URL (its payment link, none, or why it could not be fetched) is kept for
  `catalog.lookup_cache_seconds`, for at most `MAX_ENTRIES` URLs, so asking again costs no
  fetch.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from base.config import Settings
from catalog.discovery import discover
from catalog.errors import CatalogError
from catalog.urls import normalise

MAX_ENTRIES = 4096

Outcome = dict[str, Any] | None | CatalogError


class Busy(CatalogError):
    """Too many fetches are running (status 503), or for this client (status 429)."""

    code = "too_many_requests"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class FetchGate:
    """The limits and the cache of one hub process (one event loop)."""

    running: int = 0
    by_client: dict[str, int] = field(default_factory=dict)
    cache: OrderedDict[str, tuple[float, Outcome]] = field(default_factory=OrderedDict)

    async def discover(self, url: str, config: Settings,
                       client: str) -> dict[str, Any] | None:
        """`catalog.discovery.discover(url)` within the limits, from the cache when it is
        there. Raises Busy when a limit is reached, else as `discover`."""
        settings = config.catalog
        key = normalise(url)
        outcome = self._cached(key)
        if outcome is False:
            outcome = await self._fetch(key, config, client)
            self._keep(key, outcome, settings.lookup_cache_seconds)
        if isinstance(outcome, CatalogError):
            raise outcome
        return outcome

    async def _fetch(self, url: str, config: Settings, client: str) -> Outcome:
        settings = config.catalog
        if self.running >= settings.lookup_concurrency:
            raise Busy("too many pages are being fetched; try again in a moment", 503)
        if self.by_client.get(client, 0) >= settings.lookup_per_client:
            raise Busy("too many lookups from your address at once; wait for them to finish",
                       429)
        self.running += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        try:
            return await discover(url, config)
        except CatalogError as exc:
            return exc
        finally:
            self.running -= 1
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]

    def _cached(self, url: str) -> Outcome | Literal[False]:
        """The outcome kept for `url`, or False when there is none (or it is too old)."""
        kept = self.cache.get(url)
        if kept is None:
            return False
        if kept[0] < time.monotonic():
            del self.cache[url]
            return False
        return kept[1]

    def _keep(self, url: str, outcome: Outcome, seconds: float) -> None:
        if seconds <= 0:
            return
        self.cache[url] = (time.monotonic() + seconds, outcome)
        self.cache.move_to_end(url)
        while len(self.cache) > MAX_ENTRIES:
            self.cache.popitem(last=False)
