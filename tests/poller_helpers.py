"""Helpers shared by the polled platforms' tests: a funded giver and a creator who both linked
their accounts, an account's poll row, the one thing flattred, and a huge answer refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, Row, select

from base.config import Settings
from base.tables.connectors import poll_accounts
from base.vault import Vault
from connectors import polling
from connectors.poll_types import Poller
from ledger import accounts
from ledger.schema import flattrs, identities, things
from members import linking


def link_giver_and_creator(engine: Engine, config: Settings, platform: str, *, vault: Vault,
                           giver_id: str, creator_id: str, access_token: str,
                           refresh_token: str | None = None) -> int:
    """pjotr (budget 500, funds 2,000) and a creator, each with their `platform` account linked
    and claimed; returns pjotr's poll account id."""
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "pjotr")
        accounts.set_budget(conn, uid, 500, config.money)
        accounts.credit_funds(conn, uid, 2000, "test", "test:pjotr")
        creator = accounts.create_user(conn, "creator")
        linking.link_account(conn, creator, platform, creator_id, vault=vault,
                             access_token="unused")
        return linking.link_account(conn, uid, platform, giver_id, vault=vault,
                                    access_token=access_token, refresh_token=refresh_token)


def poll_row(engine: Engine, account: int) -> Row[Any]:
    with engine.connect() as conn:
        return conn.execute(select(poll_accounts).where(poll_accounts.c.id == account)).one()


def flattred_thing(engine: Engine) -> Row[Any]:
    """The one flattred thing, with its owner's platform user id as `owner`."""
    with engine.connect() as conn:
        return conn.execute(select(things, identities.c.platform_user_id.label("owner"))
                            .join(flattrs, flattrs.c.thing_id == things.c.id)
                            .join(identities, identities.c.id == things.c.owner_identity_id)
                            ).one()


def huge_answer_fails_one_poll(engine: Engine, account: int, poller: Callable[[], Poller],
                               answer: Callable[[Any], None], huge: Any) -> None:
    """With the fake answering `huge` (past the pollers' cap), a poll fails with AnswerTooLarge
    and the account's backoff, taking no baseline; the next page answered as usual takes it."""
    answer(huge)
    assert polling.poll_account(engine, poller(), account).status == "error"
    state = poll_row(engine, account)
    assert (state.failures, state.baseline_done) == (1, False)
    assert "AnswerTooLarge" in state.last_error
    answer(None)
    assert polling.poll_account(engine, poller(), account).status == "baseline"
