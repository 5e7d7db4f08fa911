"""The Jetstream consumer: Bluesky likes of linked accounts, from a WebSocket, into the inbox.

It connects to `connectors.bluesky.jetstream_url` (v1 `/subscribe`) with
`wantedCollections=app.bsky.feed.like`, `requireHello=true` and, once it has handled a
message before, `cursor=<saved time_us - replay_seconds>`, then sends its filter as an
`options_update` message (the DID list does not have to fit in a URL). `wantedDids` names the
linked accounts while there are at most `max_wanted_dids` of them (Jetstream's own cap is
10,000); beyond that it asks for every like on the network. Either way every message is
filtered here too, by a set lookup of its DID, before it is decoded whole (`Consumer.feed`):
Jetstream's messages begin with `{"did":"…"`. The linked accounts are read again every
`reload_seconds` and the filter updated in place.

With `compress: true` it asks for zstd (`compress=true`): each binary message is a zstd frame
made with Jetstream's own dictionary, shipped here as `jetstream_zstd.dict` (dictionary id
1612007021, from github.com/bluesky-social/jetstream, MIT or Apache-2.0).

Matching likes are stored in batches (`batch_size`, or `flush_ms` after the first one waits)
by `connectors.bluesky.store`, with the cursor, in one transaction; the cursor alone is saved
at least every `cursor_seconds`. When the database cannot store a batch, the batch is dropped
and the consumer reconnects from the saved cursor after a pause: Jetstream, which keeps more
than a day of messages, is the buffer, and nothing the hub acknowledged depends on it.

Liveness goes to the Redis hash `flattr:stream:bluesky` (`connected` "1"/"0",
`last_event_at` ISO, `lag_seconds`, `updated_at` ISO), where `up` and `/ops` read it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import structlog
import zstandard
from sqlalchemy import Engine
from sqlalchemy import exc as sa
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from base.config import Settings
from connectors import bluesky
from ledger.events import NormalisedEvent

DICTIONARY = Path(__file__).with_name("jetstream_zstd.dict")
STATUS_KEY = "flattr:stream:bluesky"
PREFIX = b'{"did":"'
SERVER_MAX_DIDS = 10_000  # Jetstream refuses a longer wantedDids
MAX_MESSAGE = 1 << 20
DATABASE_ERRORS = (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError,
                   sa.TimeoutError)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class StreamSettings:
    url: str
    max_wanted_dids: int
    compress: bool
    replay_seconds: float
    batch_size: int
    flush_ms: int
    cursor_seconds: float
    reload_seconds: float
    reconnect_seconds: float
    max_reconnect_seconds: float

    @classmethod
    def from_config(cls, config: Settings) -> StreamSettings:
        section = config.connectors["bluesky"]
        return cls(section.jetstream_url,
                   min(SERVER_MAX_DIDS, section.max_wanted_dids),
                   bool(section.compress), section.replay_seconds,
                   section.batch_size, section.flush_ms,
                   section.cursor_seconds, section.reload_seconds,
                   section.reconnect_seconds, section.max_reconnect_seconds)


def decompressor() -> zstandard.ZstdDecompressor:
    """A decompressor for Jetstream's zstd frames (its custom dictionary)."""
    return zstandard.ZstdDecompressor(
        dict_data=zstandard.ZstdCompressionDict(DICTIONARY.read_bytes()))


class Consumer:
    """The stream's state between the socket and the database: the linked DIDs, the likes
    waiting to be stored, and the last message handled. `feed` is the hot path."""

    def __init__(self, engine: Engine, settings: StreamSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.dids: frozenset[bytes] = frozenset()
        self.pending: list[bluesky.LikeOp] = []
        self.first_pending = 0.0
        self.last_time_us: int | None = None  # of the last message handled and decoded
        self.last_skipped: bytes | None = None  # a later message skipped without decoding it
        self.saved_at = time.monotonic()
        self.saved: int | None = None  # the cursor last saved
        self.seen = 0
        self.kept = 0
        self.malformed = 0
        self.zstd = decompressor() if settings.compress else None

    def set_dids(self, dids: set[str]) -> bool:
        """Replace the linked DIDs; whether they changed."""
        wanted = frozenset(did.encode() for did in dids)
        changed = wanted != self.dids
        self.dids = wanted
        return changed

    def options(self) -> dict[str, Any]:
        """The `options_update` message of the current filter."""
        payload: dict[str, Any] = {"wantedCollections": [bluesky.LIKE]}
        if len(self.dids) <= self.settings.max_wanted_dids:
            payload["wantedDids"] = sorted(did.decode() for did in self.dids)
        return {"type": "options_update", "payload": payload}

    def feed(self, message: bytes | str) -> bool:
        """Handle one message; whether a batch is due for `flush`."""
        self.seen += 1
        raw = message.encode() if isinstance(message, str) else message
        if self.zstd is not None and not isinstance(message, str):
            try:
                raw = self.zstd.decompress(raw, max_output_size=MAX_MESSAGE)
            except zstandard.ZstdError:
                self.malformed += 1
                return False
        if raw.startswith(PREFIX):
            end = raw.find(b'"', len(PREFIX))
            if end > 0 and raw[len(PREFIX):end] not in self.dids:
                self.last_skipped = raw
                return False
        try:
            decoded = orjson.loads(raw)
            op = bluesky.parse_commit(decoded)
        except (orjson.JSONDecodeError, ValueError):
            self.malformed += 1
            return False
        time_us = decoded.get("time_us") if isinstance(decoded, dict) else None
        if isinstance(time_us, int) and not isinstance(time_us, bool):
            self.last_time_us, self.last_skipped = time_us, None
        if op is None or op.did.encode() not in self.dids:
            return False
        if not self.pending:
            self.first_pending = time.monotonic()
        self.pending.append(op)
        self.kept += 1
        return len(self.pending) >= self.settings.batch_size

    def due(self) -> bool:
        """Whether waiting likes or an old saved cursor call for a `flush` now."""
        now = time.monotonic()
        if self.pending:
            return now - self.first_pending >= self.settings.flush_ms / 1000
        return (self.cursor() not in (None, self.saved)
                and now - self.saved_at >= self.settings.cursor_seconds)

    def cursor(self) -> int | None:
        """The `time_us` of the last message handled (decoding the last skipped one)."""
        if self.last_skipped is not None:
            try:
                time_us = orjson.loads(self.last_skipped).get("time_us")
            except (orjson.JSONDecodeError, AttributeError):
                time_us = None
            if isinstance(time_us, int) and not isinstance(time_us, bool):
                self.last_time_us = time_us
            self.last_skipped = None
        return self.last_time_us

    def flush(self) -> list[NormalisedEvent]:
        """Store the waiting likes and the cursor in one transaction; return the events."""
        ops, cursor = self.pending, self.cursor()
        self.pending = []
        with self.engine.begin() as conn:
            events = bluesky.store(conn, ops, cursor)
        self.saved_at, self.saved = time.monotonic(), cursor
        return events

    def reset(self) -> int | None:
        """Forget what was not stored; the saved cursor to resume from."""
        self.pending, self.last_skipped = [], None
        with self.engine.connect() as conn:
            self.last_time_us = self.saved = bluesky.load_cursor(conn)
        return self.last_time_us

    def reload(self) -> bool:
        """Read the linked DIDs again; whether they changed."""
        with self.engine.connect() as conn:
            return self.set_dids(bluesky.linked_dids(conn))


def subscribe_url(settings: StreamSettings, cursor: int | None) -> str:
    """The URL to connect to, resuming `replay_seconds` before `cursor`."""
    query: list[tuple[str, str]] = [("wantedCollections", bluesky.LIKE),
                                    ("requireHello", "true")]
    if cursor is not None:
        query.append(("cursor", str(max(1, cursor - int(settings.replay_seconds * 1e6)))))
    if settings.compress:
        query.append(("compress", "true"))
    return settings.url + ("&" if "?" in settings.url else "?") + urlencode(query)


class Status:
    """The stream's liveness in Redis (`STATUS_KEY`); a Redis error is logged, never raised."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def publish(self, connected: bool, last_time_us: int | None) -> None:
        now = datetime.now(UTC)
        fields = {"connected": "1" if connected else "0",
                  "updated_at": now.isoformat(timespec="seconds")}
        if last_time_us is not None:
            seen = datetime.fromtimestamp(last_time_us / 1e6, UTC)
            fields["last_event_at"] = seen.isoformat(timespec="seconds")
            fields["lag_seconds"] = f"{max(0.0, (now - seen).total_seconds()):.3f}"
        try:
            self.redis.hset(STATUS_KEY, mapping=fields)
        except Exception as exc:  # redis-py raises several families; liveness is best effort
            log.warning("stream_status_failed", error=exc.__class__.__name__)


async def run(engine: Engine, config: Settings, stop: asyncio.Event,
              on_stored: Callable[[list[NormalisedEvent]], Any],
              status: Status | None = None) -> None:
    """Consume Jetstream until `stop` is set: reconnect with backoff after a failure, store
    what is due before returning. `on_stored(events)` runs after each commit (it wakes the
    queue)."""
    settings = StreamSettings.from_config(config)
    consumer = Consumer(engine, settings)
    backoff = settings.reconnect_seconds
    while not stop.is_set():
        try:
            cursor = await asyncio.to_thread(consumer.reset)
            await asyncio.to_thread(consumer.reload)
            await _session(consumer, subscribe_url(settings, cursor), stop, on_stored, status)
            backoff = settings.reconnect_seconds
        except DATABASE_ERRORS as exc:
            log.warning("bluesky_database_failed", error=exc.__class__.__name__)
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.warning("jetstream_disconnected", error=exc.__class__.__name__)
        if status is not None:
            await asyncio.to_thread(status.publish, False, consumer.last_time_us)
        if stop.is_set():
            break
        try:
            await asyncio.wait_for(stop.wait(), backoff)
        except TimeoutError:
            backoff = min(settings.max_reconnect_seconds, backoff * 2)
    log.info("jetstream_stopped", seen=consumer.seen, kept=consumer.kept,
             malformed=consumer.malformed)


async def _session(consumer: Consumer, url: str, stop: asyncio.Event,
                   on_stored: Callable[[list[NormalisedEvent]], Any],
                   status: Status | None) -> None:
    settings = consumer.settings
    lock = asyncio.Lock()
    stores: list[asyncio.Future[None]] = []

    async def store() -> None:
        events = await asyncio.to_thread(consumer.flush)
        if events:
            await asyncio.to_thread(on_stored, events)

    async def flush() -> None:
        # A store is not cancelled halfway (its transaction runs in a thread anyway): the
        # session waits for it before the last flush.
        async with lock:
            if consumer.pending or consumer.cursor() not in (None, consumer.saved):
                stores[:] = [job for job in stores if not job.done()]
                stores.append(asyncio.ensure_future(store()))
                await asyncio.shield(stores[-1])

    async with connect(url, max_size=MAX_MESSAGE, open_timeout=10, ping_interval=20,
                       compression=None) as socket:
        await socket.send(orjson.dumps(consumer.options()).decode())
        log.info("jetstream_connected", dids=len(consumer.dids),
                 filtered_there=len(consumer.dids) <= settings.max_wanted_dids)
        if status is not None:
            await asyncio.to_thread(status.publish, True, consumer.last_time_us)

        async def tick() -> None:
            reloaded = time.monotonic()
            while True:
                await asyncio.sleep(min(settings.flush_ms / 1000, 0.5))
                if consumer.due():
                    await flush()
                if status is not None:
                    await asyncio.to_thread(status.publish, True, consumer.last_time_us)
                if time.monotonic() - reloaded >= settings.reload_seconds:
                    reloaded = time.monotonic()
                    if await asyncio.to_thread(consumer.reload):
                        await socket.send(orjson.dumps(consumer.options()).decode())

        async def read() -> None:
            async for message in socket:
                if consumer.feed(message):
                    await flush()

        tasks = [asyncio.create_task(tick()), asyncio.create_task(read()),
                 asyncio.create_task(stop.wait())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*stores, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        await flush()
