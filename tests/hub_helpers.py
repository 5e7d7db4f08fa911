"""Connector secrets the hub tests sign with, and a few users to flattr with."""

import base64
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from base.config import Settings, with_overrides
from ledger import accounts, identities
from pipeline.context import Context, install

GITHUB_SECRET = "It's a Secret to Everybody"
RELAY_SECRET = "whsec_" + base64.b64encode(b"relay-secret-for-tests-0123456789").decode()
METRICS_TOKEN = "metrics-test-token"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def reinstall(context: Context, overrides: Mapping[str, Any]) -> Context:
    """Install, for the rest of the test, `context` with its settings changed."""
    changed = Context(with_overrides(context.config, overrides), context.engine, context.redis)
    install(changed)
    return changed


def seed_github_users(engine: Engine, config: Settings) -> None:
    """ana (GitHub 1, funded) gives; bo (GitHub 2) owns repositories and claims them."""
    with engine.begin() as conn:
        for name, github, budget, funds in (("ana", "1", 500, 2000), ("bo", "2", 200, 300)):
            uid = accounts.create_user(conn, name)
            accounts.set_budget(conn, uid, budget, config.money)
            accounts.credit_funds(conn, uid, funds, "test", f"test:{name}")
            identities.link(conn, uid, "github", github, claim=True)
