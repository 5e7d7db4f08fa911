"""Fixtures for the money tests: a fake Stripe served on the test's loop, and a hub whose
`payments.stripe` points at it and whose SEPA debtor account is set. Load with
`pytest_plugins = ["tests.hub_fixtures", "tests.money_fixtures"]`."""

from __future__ import annotations

from typing import Any

import pytest
from redis import Redis
from sqlalchemy import Engine

from base.config import Settings, with_overrides
from hub.app import create_app
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.stripe_api import create_app as create_fake_stripe

DEBTOR = {"name": "Flattr Hub Operator", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX"}


@pytest.fixture
def debtor() -> dict[str, str]:
    """The operator's account that SEPA batches pay from."""
    return dict(DEBTOR)


@pytest.fixture
async def fake_stripe(aiohttp_server: Any) -> FakeStripe:
    state = FakeStripe()
    server = await aiohttp_server(create_fake_stripe(state))
    state.api_base = str(server.make_url("")).rstrip("/")
    return state


@pytest.fixture
def money_config(hub_config: Settings, fake_stripe: FakeStripe,
                 unused_tcp_port: int) -> Settings:
    """Stripe pointed at the fake, the SEPA debtor set, and links pointing at the port
    `money_client` serves on."""
    return with_overrides(hub_config, {
        "payments.stripe": {"secret_key": fake_stripe.secret_key,
                            "webhook_secret": fake_stripe.webhook_secret,
                            "api_base": fake_stripe.api_base},
        "payments.sepa": dict(DEBTOR),
        "hub.base_url": f"http://127.0.0.1:{unused_tcp_port}"})


@pytest.fixture
async def money_client(aiohttp_client: Any, money_config: Settings, engine: Engine,
                       redis: Redis, fake_stripe: FakeStripe) -> Any:
    port = int(money_config.hub.base_url.rsplit(":", 1)[1])
    client = await aiohttp_client(create_app(money_config, engine, redis),
                                  server_kwargs={"port": port})
    fake_stripe.webhook_url = str(client.make_url("/webhooks/stripe"))
    return client
