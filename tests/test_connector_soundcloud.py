"""SoundCloud: the liked-tracks poller (requests against a local fake API whose `next_href`
points at api.soundcloud.com), snapshots diffed by URN, single-use refresh tokens, and the
relay fixture through the Standard Webhooks connector."""

from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from base.config import with_overrides
from base.tables.connectors import poll_accounts, poll_seen
from base.vault import Vault
from connectors import polling
from connectors.soundcloud import SoundCloudPoller, poller
from ledger import accounts
from ledger.schema import flattrs, things
from members.linking import link_account
from tests.fakes.platforms import FakeSoundCloud, fixture, track
from tests.fakes.server import serve
from workers import jobs

pytest_plugins = ["tests.hub_fixtures"]
VAULT = Vault(Fernet.generate_key())

ME = "soundcloud:users:77889900"
LUMEN = "soundcloud:users:22110099"


@pytest.fixture
def fake_sc():
    fake = FakeSoundCloud(page_size=1)
    fake.add_user(ME, "sc-token", "sc-refresh", fixture("soundcloud-likes-tracks-page.json")[
        "collection"])
    with serve(fake.app()) as url:
        fake.url = url
        yield fake


def sc_poller(fake: FakeSoundCloud, **overrides: Any) -> SoundCloudPoller:
    return SoundCloudPoller(**{"client_id": "cid", "client_secret": "cs", "api_base": fake.url,
                               "token_url": fake.url + "/oauth/token", "vault": VAULT,
                               **overrides})


def link(engine, config) -> int:
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "pjotr")
        accounts.set_budget(conn, uid, 500, config.money)
        accounts.credit_funds(conn, uid, 2000, "test", "test:pjotr")
        lumen = accounts.create_user(conn, "lumen")
        link_account(conn, lumen, "soundcloud", LUMEN, vault=VAULT, access_token="unused")
        return link_account(conn, uid, "soundcloud", ME, vault=VAULT,
                            access_token="sc-token", refresh_token="sc-refresh")


def tokens(stored) -> tuple[str, str]:
    return VAULT.open(stored.access_token), VAULT.open(stored.refresh_token)


def row(engine, account: int):
    with engine.connect() as conn:
        return conn.execute(select(poll_accounts).where(poll_accounts.c.id == account)).one()


def test_poller_is_off_without_a_client_id(config) -> None:
    assert poller(config) is None
    config = with_overrides(config, {"connectors.soundcloud.client_id": "cid"})
    assert isinstance(poller(config), SoundCloudPoller)


def test_likes_follow_next_href_and_reach_the_ledger_by_urn(
        engine, config, fake_sc, worker_context) -> None:
    account = link(engine, config)
    scp = sc_poller(fake_sc)
    outcome = polling.poll_account(engine, scp, account)
    assert (outcome.status, outcome.requests) == ("baseline", 2)  # one track per page
    with engine.connect() as conn:
        assert set(conn.execute(select(poll_seen.c.content_id).where(
            poll_seen.c.account_id == account)).scalars()) == {
            "soundcloud:tracks:1822334455", "soundcloud:tracks:1811223344"}
    fake_sc.likes[ME].insert(0, track(5, 22110099))
    assert polling.poll_account(engine, scp, account).likes == 1
    assert jobs.drain()["flattred"] == 1  # lumen linked (and claimed) his account
    with engine.connect() as conn:
        thing = conn.execute(select(things).join(flattrs, flattrs.c.thing_id == things.c.id)).one()
    assert (thing.content_id, thing.url, thing.title) == (
        "soundcloud:tracks:5", "https://soundcloud.com/u22110099/track-5", "Track 5")
    fake_sc.likes[ME].pop(0)
    assert polling.poll_account(engine, scp, account).unlikes == 1
    assert jobs.drain()["unliked"] == 1


def test_refresh_tokens_are_single_use_and_the_new_one_is_stored(engine, config, fake_sc) -> None:
    account = link(engine, config)
    scp = sc_poller(fake_sc)
    fake_sc.expire("sc-token")
    assert polling.poll_account(engine, scp, account).status == "baseline"
    first = row(engine, account)
    assert tokens(first) == ("access-1", "refresh-1")
    fake_sc.expire("access-1")
    assert polling.poll_account(engine, scp, account).status == "polled"
    second = row(engine, account)
    assert tokens(second) == ("access-2", "refresh-2")
    assert fake_sc.refresh_tokens == {"refresh-2": ME}  # the used ones are gone


def test_a_refused_refresh_marks_the_account_for_relinking_without_retrying(
        engine, config, fake_sc) -> None:
    account = link(engine, config)
    fake_sc.expire("sc-token")
    fake_sc.refresh_tokens.clear()
    scp = sc_poller(fake_sc)
    assert polling.poll_account(engine, scp, account).status == "relink"
    assert polling.poll_account(engine, scp, account).status == "skipped"
    assert (fake_sc.stats["401"], fake_sc.stats["refresh"]) == (1, 1)
    state = row(engine, account)
    assert state.state == "relink" and "refreshed" in state.last_error
    assert "sc-" not in state.last_error


def test_a_refreshed_token_that_is_refused_again_needs_a_relink(engine, config, fake_sc) -> None:
    account = link(engine, config)
    fake_sc.expire("sc-token")
    fake_sc.issue_dead_tokens = True
    assert polling.poll_account(engine, sc_poller(fake_sc), account).status == "relink"
    assert (fake_sc.stats["401"], fake_sc.stats["refresh"]) == (2, 1)
    state = row(engine, account)
    assert (state.state, VAULT.open(state.refresh_token)) == ("relink", "refresh-1")  # at once


def test_429_backs_off_until_the_reset(engine, config, fake_sc) -> None:
    account = link(engine, config)
    fake_sc.window_requests = 0
    outcome = polling.poll_account(engine, sc_poller(fake_sc), account)
    assert outcome.status == "rate_limited"
    assert row(engine, account).last_error == "rate limited (429)"
