"""Mastodon: Mastodon.py's favourites()/fetch_next() against a local fake instance that pages
with the Link header, identities qualified per instance, per-instance app credentials."""

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from base.config import with_overrides
from base.tables.connectors import mastodon_apps, poll_accounts, poll_seen
from base.vault import Vault
from connectors import polling
from connectors.mastodon import MastodonPoller, app_credentials, poller, qualified
from ledger import accounts, identities
from ledger.schema import flattrs, things
from members.linking import link_account
from tests.fakes.platforms import FakeMastodon, fixture, status
from tests.fakes.server import serve
from workers import jobs

pytest_plugins = ["tests.hub_fixtures"]
VAULT = Vault(Fernet.generate_key())

INSTANCE = "https://mastodon.example"
ME = "pjotr@mastodon.example"


@pytest.fixture
def fake_mastodon():
    fake = FakeMastodon(page_size=1)
    fake.add_user(ME, "m-token", likes=fixture("mastodon-favourites-page.json"))
    with serve(fake.app()) as url:
        fake.url = url
        yield fake


def link(engine, config) -> int:
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "pjotr")
        accounts.set_budget(conn, uid, 500, config.money)
        accounts.credit_funds(conn, uid, 2000, "test", "test:pjotr")
        ola = accounts.create_user(conn, "ola")
        identities.link(conn, ola, "mastodon", "ola@mastodon.example", claim=True)
        return link_account(conn, uid, "mastodon", ME, vault=VAULT, remote_id="1",
                            access_token="m-token", instance=INSTANCE)


def test_identities_are_qualified_with_the_instance() -> None:
    assert qualified("ola", INSTANCE) == "ola@mastodon.example"
    assert qualified("maren@fosstodon.example", INSTANCE) == "maren@fosstodon.example"


def test_poller_is_off_unless_enabled(config) -> None:
    assert poller(config) is None
    config = with_overrides(config, {"connectors.mastodon.enabled": True})
    assert isinstance(poller(config), MastodonPoller)


def test_favourites_are_paged_by_link_header_and_reach_the_ledger(
        engine, config, fake_mastodon, worker_context) -> None:
    account = link(engine, config)
    mp = MastodonPoller(api_base=fake_mastodon.url, vault=VAULT)
    outcome = polling.poll_account(engine, mp, account)
    assert (outcome.status, outcome.requests) == ("baseline", 2)
    with engine.connect() as conn:
        assert set(conn.execute(select(poll_seen.c.owner_id)).scalars()) == {
            "maren@fosstodon.example", "ola@mastodon.example"}
    fake_mastodon.likes[ME].insert(0, status(7, "ola"))
    fake_mastodon.likes[ME].insert(0, status(8, "someone@elsewhere.example"))
    outcome = polling.poll_account(engine, mp, account)
    assert (outcome.likes, outcome.requests) == (2, 4)
    totals = jobs.drain()
    assert (totals["flattred"], totals["pledge"]) == (1, 1)
    with engine.connect() as conn:
        flattred = conn.execute(select(things.c.content_id, things.c.title)
                                .join(flattrs, flattrs.c.thing_id == things.c.id)
                                .order_by(things.c.content_id)).all()
    assert ("https://mastodon.example/@ola/113000000000000007", "status 7") in flattred
    del fake_mastodon.likes[ME][0]
    assert polling.poll_account(engine, mp, account).unlikes == 1
    assert jobs.drain()["unliked"] == 1


def test_a_revoked_token_needs_a_relink(engine, config, fake_mastodon) -> None:
    account = link(engine, config)
    fake_mastodon.expire("m-token")
    assert polling.poll_account(engine, MastodonPoller(api_base=fake_mastodon.url, vault=VAULT),
                                account).status == "relink"
    with engine.connect() as conn:
        assert conn.execute(select(poll_accounts.c.state)).scalars().all() == ["relink"]


def test_rate_limit_is_thrown_not_slept(engine, config, fake_mastodon) -> None:
    account = link(engine, config)
    fake_mastodon.window_requests = 1
    outcome = polling.poll_account(engine, MastodonPoller(api_base=fake_mastodon.url,
                                                          vault=VAULT), account)
    assert outcome.status == "rate_limited"


def test_apps_are_registered_once_per_instance(engine, config, fake_mastodon) -> None:
    config = with_overrides(config, {"connectors.mastodon.api_base": fake_mastodon.url})
    with engine.begin() as conn:
        first = app_credentials(conn, "https://Mastodon.example/", config)
        again = app_credentials(conn, "mastodon.example", config)
    assert first == again == ("app-id-1", "app-secret-1")
    assert fake_mastodon.apps[0]["scopes"] == "read:favourites read:accounts"
    with engine.connect() as conn:
        assert conn.execute(select(mastodon_apps.c.instance)).scalars().all() == [
            "mastodon.example"]
