"""A fake Jetstream (v1 `/subscribe`) for tests: a `websockets` server in a thread of its own,
speaking Jetstream's JSON and honouring what a subscriber asks for:

- `wantedCollections` and `wantedDids` (query, or an `options_update` message at any time);
- `cursor` (a `time_us`): the stored messages from that time on are sent first, then live ones;
  without it, only live ones;
- `requireHello=true`: nothing is sent before the first `options_update`;
- `compress=true`: binary zstd frames made with Jetstream's dictionary.

    with FakeJetstream() as stream:   # URL: stream.url
        stream.publish(like(did, rkey, post_uri))
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import zstandard
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from connectors.jetstream import DICTIONARY

BASE32 = "234567abcdefghijklmnopqrstuvwxyz"
LIKE = "app.bsky.feed.like"


def tid(value: int) -> str:
    """A 13-character TID (record keys and revisions) for `value`."""
    return "".join(BASE32[(value >> (5 * (12 - i))) & 31] for i in range(13))


def did(n: int) -> str:
    """The n-th made-up did:plc."""
    digest = hashlib.sha256(str(n).encode()).digest()
    return "did:plc:" + "".join(BASE32[b & 31] for b in digest[:24])


def post_uri(author: str, n: int) -> str:
    return f"at://{author}/app.bsky.feed.post/{tid(n)}"


def cid(n: int) -> str:
    return "bafyrei" + "".join(BASE32[b & 31] for b in hashlib.sha256(b"c%d" % n).digest())


def like(liker: str, rkey: str, subject: str, time_us: int, rev: int) -> dict[str, Any]:
    return {"did": liker, "time_us": time_us, "kind": "commit",
            "commit": {"rev": tid(rev), "operation": "create", "collection": LIKE,
                       "rkey": rkey, "cid": cid(rev),
                       "record": {"$type": LIKE, "subject": {"uri": subject, "cid": cid(-rev)},
                                  "createdAt": "2026-12-01T12:00:00.000Z"}}}


def unlike(liker: str, rkey: str, time_us: int, rev: int) -> dict[str, Any]:
    return {"did": liker, "time_us": time_us, "kind": "commit",
            "commit": {"rev": tid(rev), "operation": "delete", "collection": LIKE,
                       "rkey": rkey}}


@dataclass
class Subscriber:
    socket: ServerConnection
    collections: set[str]
    dids: set[str]
    compress: bool
    hello: asyncio.Event
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)

    def wants(self, message: dict[str, Any]) -> bool:
        collection = (message.get("commit") or {}).get("collection")
        return ((not self.dids or message.get("did") in self.dids)
                and (not self.collections or collection in self.collections))


class FakeJetstream:
    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.subscribers: list[Subscriber] = []
        self.queries: list[dict[str, list[str]]] = []
        self.options: list[dict[str, Any]] = []
        self.sent = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fake-jetstream", daemon=True)
        self.port = 0
        self._zstd = zstandard.ZstdCompressor(
            dict_data=zstandard.ZstdCompressionDict(DICTIONARY.read_bytes()))
        self._clock = int(time.time() * 1e6)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/subscribe"

    def __enter__(self) -> FakeJetstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)  # type: ignore[union-attr]
        self._thread.join(10)

    def now(self) -> int:
        """A fresh `time_us`, later than every earlier one."""
        self._clock = max(self._clock + 1, int(time.time() * 1e6))
        return self._clock

    def publish(self, *messages: dict[str, Any]) -> None:
        """Store `messages` and send them to every subscriber that wants them."""
        done = threading.Event()

        def deliver() -> None:
            for message in messages:
                self.history.append(message)
                for subscriber in self.subscribers:
                    if subscriber.wants(message):
                        subscriber.queue.put_nowait(self._encode(subscriber, message))
            done.set()

        self._loop.call_soon_threadsafe(deliver)
        done.wait(10)

    def drop_connections(self) -> None:
        """Close every subscriber's connection (a server restart, a network hiccup)."""
        for subscriber in list(self.subscribers):
            asyncio.run_coroutine_threadsafe(subscriber.socket.close(), self._loop)

    def connected(self) -> int:
        return len(self.subscribers)

    def _encode(self, subscriber: Subscriber, message: dict[str, Any]) -> bytes:
        data = orjson.dumps(message)
        return self._zstd.compress(data) if subscriber.compress else data

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, max_size=None) as server:
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[index]
            self._ready.set()
            await self._stopping.wait()

    async def _handle(self, socket: ServerConnection) -> None:
        query = parse_qs(urlsplit(socket.request.path).query)  # type: ignore[union-attr]
        self.queries.append(query)
        subscriber = Subscriber(socket, set(query.get("wantedCollections", [])),
                                set(query.get("wantedDids", [])),
                                query.get("compress") == ["true"], asyncio.Event())
        if query.get("requireHello") != ["true"]:
            subscriber.hello.set()
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        reader = asyncio.create_task(self._read(subscriber))
        try:
            await subscriber.hello.wait()
            backlog = ([m for m in self.history if m["time_us"] >= cursor]
                       if cursor is not None else [])
            self.subscribers.append(subscriber)
            for message in backlog:
                if subscriber.wants(message):
                    await socket.send(self._encode(subscriber, message),
                                      text=not subscriber.compress)
                    self.sent += 1
            while data := await subscriber.queue.get():
                await socket.send(data, text=not subscriber.compress)
                self.sent += 1
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()
            if subscriber in self.subscribers:
                self.subscribers.remove(subscriber)

    async def _read(self, subscriber: Subscriber) -> None:
        try:
            async for text in subscriber.socket:
                update = orjson.loads(text)
                if update.get("type") != "options_update":
                    continue
                payload = update.get("payload") or {}
                self.options.append(payload)
                subscriber.collections = set(payload.get("wantedCollections") or [])
                subscriber.dids = set(payload.get("wantedDids") or [])
                subscriber.hello.set()
        except ConnectionClosed:
            pass
        finally:
            subscriber.queue.put_nowait(b"")  # the connection is gone: the sender stops too
            subscriber.hello.set()


def stream_of(messages: Iterable[dict[str, Any]]) -> list[bytes]:
    """`messages` as the JSON frames Jetstream sends."""
    return [orjson.dumps(message) for message in messages]
