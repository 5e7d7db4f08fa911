"""A hub with every webhook connector on, a signed-in operator with a CSRF token, a REST token
and a thing, for the hostile-input tests. Load with
`pytest_plugins = ["tests.hub_fixtures", "tests.hostile_fixtures"]`."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Engine

from base.config import Settings
from hub.app import create_app
from ledger import accounts, identities
from members.logins import set_operator
from tests.hostile_helpers import Hostile, configure
from tests.rest_helpers import thing, token
from tests.web_helpers import sign_up

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def hostile(aiohttp_client: Any, hub_config: Settings, engine: Engine,
                  redis: Any) -> Hostile:
    hub_config = configure(hub_config)
    client = await aiohttp_client(create_app(hub_config, engine, redis))
    await sign_up(client, "olga")
    with engine.begin() as conn:
        uid = accounts.user_id(conn, "olga")
        set_operator(conn, uid, True)
        accounts.set_budget(conn, uid, 500, hub_config.money)
        accounts.credit_funds(conn, uid, 2000, "test", "test:olga")
        identities.link(conn, uid, "github", "1", claim=True)
    page = await (await client.get("/settings")).text()
    match = CSRF.search(page) or CSRF.search(await (await client.get("/money")).text())
    assert match
    thing_id = thing(engine, uid, "https://olga.example/post")
    return Hostile(client, match.group(1), token(engine, uid), thing_id)
