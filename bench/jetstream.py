"""Jetstream consumer benchmark (not a test): how many Jetstream messages per second the
consumer handles on one core while filtering a stream of likes from `--dids` distinct DIDs
(default 1,000,000) against `--linked` linked accounts (default 100,000).

Setup, not timed: a scratch SQLite database with `--linked` Bluesky identities linked to
members; `--messages` like messages (default: one per DID, in random order), each the JSON
Jetstream sends (`{"did","time_us","kind":"commit","commit":{…}}`), made beforehand, and with
`--compress` each made a zstd frame with Jetstream's dictionary.

Timed: the messages are fed straight into the consumer's message handler,
`connectors.jetstream.Consumer.feed` (what the WebSocket loop calls for each frame, no socket
in between: a local WebSocket server written in Python would cost more CPU than the consumer),
and every batch the handler says is due is stored with `Consumer.flush` (the likes of linked
accounts into the inbox and `bluesky_likes`, and the cursor, one transaction per batch), in
the same thread, pinned to one core. Since more linked accounts than Jetstream's cap of 10,000
`wantedDids` means every like on the network comes, this is the production case.

Prints: messages/s over the whole run, how many were kept (stored as likes), and the handler
alone (every message skipped: nobody linked). Run:
`python bench/jetstream.py [--dids 1000000] [--linked 100000] [--messages N] [--compress]`.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson
import structlog
import zstandard
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from base.config import with_overrides
from base.db import upgrade
from connectors.jetstream import DICTIONARY, Consumer, StreamSettings
from connectors.registry import default_config
from ledger import accounts
from ledger.db import make_engine
from ledger.schema import identities
from tests.fakes.jetstream import did, like, post_uri, tid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dids", type=int, default=1_000_000)
    parser.add_argument("--linked", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=0, help="default: one per DID")
    parser.add_argument("--compress", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    total = args.messages or args.dids

    started = time.perf_counter()
    dids = [did(n) for n in range(args.dids)]
    rng = random.Random(7)
    linked = rng.sample(range(args.dids), args.linked)
    order = [n % args.dids for n in range(total)]
    rng.shuffle(order)
    base = int(time.time() * 1e6) - total
    messages = [orjson.dumps(like(dids[n], tid(i + 1), post_uri(dids[(n * 7919) % args.dids], n),
                                  base + i, i + 1)) for i, n in enumerate(order)]
    size = sum(map(len, messages)) / len(messages)
    if args.compress:
        packer = zstandard.ZstdCompressor(
            dict_data=zstandard.ZstdCompressionDict(DICTIONARY.read_bytes()))
        frames = [packer.compress(m) for m in messages]
        print(f"zstd frames: {sum(map(len, frames)) / len(frames):.0f} bytes on average "
              f"(JSON {size:.0f})")
        messages = frames
    print(f"made {total:,} messages from {args.dids:,} DIDs ({size:.0f} bytes of JSON each) "
          f"in {time.perf_counter() - started:.1f} s")

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        upgrade(url)
        engine = make_engine(url)
        config = default_config()
        config = with_overrides(config, {"connectors.bluesky.compress": args.compress})
        with engine.begin() as conn:
            uid = accounts.create_user(conn, "bench")
            conn.execute(insert(identities), [
                {"platform": "bluesky", "platform_user_id": dids[n], "linked_user_id": uid,
                 "flattr_enabled": True} for n in linked])
        settings = StreamSettings.from_config(config)

        idle = Consumer(engine, settings)
        idle.set_dids(set())
        started = time.perf_counter()
        for message in messages:
            idle.feed(message)
        alone = time.perf_counter() - started

        consumer = Consumer(engine, settings)
        consumer.reload()
        stored = 0
        started = time.perf_counter()
        for message in messages:
            if consumer.feed(message):
                stored += len(consumer.flush())
        stored += len(consumer.flush())
        elapsed = time.perf_counter() - started
        engine.dispose()

    print(f"linked accounts: {args.linked:,}; kept and stored: {stored:,} likes "
          f"({consumer.kept:,} kept, {consumer.malformed} malformed)")
    print(f"consumer, filtering and storing: {total / elapsed:,.0f} messages/s "
          f"({total:,} in {elapsed:.2f} s, one core)")
    print(f"handler alone, nothing linked: {total / alone:,.0f} messages/s "
          f"({alone / total * 1e6:.2f} µs each)")


if __name__ == "__main__":
    main()
