"""The Discord gateway bot while its database is down for a while: reactions are retried, then
spooled to a file, and stored in order once the database answers again; none is lost, also
across a restart of the bot. The outage is real: PostgreSQL behind a local TCP proxy that is
not there at first, or the SQLite file's folder gone for a while."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, make_url, select

from base.config import with_overrides
from connectors import discord as dc
from connectors.discord_spool import SPOOL_FILE
from ledger.db import make_engine
from pipeline import inbox
from tests.fakes.platforms import fixture
from tests.test_connector_discord import MAREN, people

pytest_plugins = ["tests.hub_fixtures"]
WAIT_SECONDS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def outage(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Engine, Any]]:
    """(an engine on the test database that nothing answers on yet, `restore()` making it
    answer)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        real = Path(url.database).parent
        link = tmp_path / "database-folder"
        link.symlink_to(real, target_is_directory=True)
        down = make_engine(str(url.set(database=str(link / Path(url.database).name))))
        link.unlink()  # the folder goes away once the engine is made (it wants the folder)

        async def restore() -> None:
            link.symlink_to(real, target_is_directory=True)

        yield down, restore
        down.dispose()
        return
    port = free_port()
    servers: list[asyncio.Server] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(url.host, url.port or 5432)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def restore() -> None:
        servers.append(await asyncio.start_server(forward, "127.0.0.1", port))

    down = make_engine(str(url.set(host="127.0.0.1", port=port)))
    try:
        yield down, restore
    finally:
        down.dispose()
        for server in servers:
            server.close()


async def until(check: Any, what: str) -> None:
    for _ in range(WAIT_SECONDS * 20):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def spooled(spool: Path) -> int:
    return len(spool.read_text().splitlines()) if spool.exists() else 0


async def test_reactions_wait_in_the_spool_while_the_database_is_down(
        engine, hub_config, db_url, tmp_path) -> None:
    people(engine, hub_config)
    hub_config = with_overrides(hub_config, {"connectors.discord.retry_seconds": 0.05})
    spool = Path(hub_config.data_dir) / SPOOL_FILE
    woken: list[Any] = []
    async with outage(db_url, tmp_path) as (down, restore):
        client = dc.make_bot(down, hub_config, woken.extend)
        await client._async_setup_hook()
        state = client._connection
        state.parse_message_reaction_add(fixture("discord-reaction-add.json")["d"])
        state.parse_message_reaction_remove(fixture("discord-reaction-remove.json")["d"])
        await until(lambda: spooled(spool) == 2, "both reactions in the spool")
        await asyncio.sleep(1)  # down for a while: replays keep failing, nothing is dropped
        assert spooled(spool) == 2 and woken == []
        await client.close()  # the bot stops with the spool full

        await restore()
        client = dc.make_bot(down, hub_config, woken.extend)
        await client._async_setup_hook()
        await client.setup_hook()  # what login runs: replays what an earlier run spooled
        await until(lambda: len(woken) == 2, "the spooled reactions stored")
        assert [(e.kind, e.owner_id) for e in woken] == [("like", MAREN), ("unlike", MAREN)]
        assert not spool.exists()
        state = client._connection
        state.parse_message_reaction_add(fixture("discord-reaction-add.json")["d"])
        await until(lambda: len(woken) == 3, "a new reaction stored at once")
        await client.close()
    with engine.connect() as conn:
        stored = conn.execute(select(inbox.inbox.c.event).order_by(inbox.inbox.c.id)).scalars()
        assert [json.loads(row)["kind"] for row in stored] == ["like", "unlike", "like"]
        assert inbox.pending_count(conn) == 3
