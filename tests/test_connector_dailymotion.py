"""Dailymotion: the liked-videos poller (requests through the guarded session) against a local
fake of the Graph API's `GET /me/likes` (`page`/`limit`/`has_more`): like → flattr → unlike →
retraction, hostile items skipped, 429 with Retry-After, an expired token refreshed with the
client credentials in the form."""

from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from structlog.testing import capture_logs

from base.config import with_overrides
from base.public_net import Guard, GuardedAdapter
from base.vault import Vault
from connectors import polling
from connectors.dailymotion import API, DailymotionPoller, poller
from connectors.poll_http import RouteAdapter
from ledger.sql import utcnow
from tests.fakes.platforms import fixture
from tests.fakes.server import serve
from tests.fakes.video_platforms import FakeDailymotion, dailymotion_video
from tests.poller_helpers import flattred_thing, link_giver_and_creator, poll_row
from workers import jobs

pytest_plugins = ["tests.hub_fixtures"]
VAULT = Vault(Fernet.generate_key())

ME, CREATOR = "x9me001", "x2lefik"


@pytest.fixture
def fake_dm():
    fake = FakeDailymotion(page_size=1)
    fake.add_user(ME, "dm-token", "dm-refresh", fixture("dailymotion-likes-page.json")["list"])
    with serve(fake.app()) as url:
        fake.url = url
        yield fake


def dm_poller(fake: FakeDailymotion, **overrides: Any) -> DailymotionPoller:
    return DailymotionPoller(**{"client_id": "cid", "client_secret": "cs", "api_base": fake.url,
                                "vault": VAULT, **overrides})


def link(engine, config) -> int:
    return link_giver_and_creator(engine, config, "dailymotion", vault=VAULT, giver_id=ME,
                                  creator_id=CREATOR, access_token="dm-token",
                                  refresh_token="dm-refresh")


def test_poller_is_off_without_a_client_id(config) -> None:
    assert poller(config) is None
    config = with_overrides(config, {"connectors.dailymotion.client_id": "cid"})
    assert isinstance(poller(config), DailymotionPoller)


def test_like_flattr_unlike_retraction_through_pages(engine, config, fake_dm,
                                                     worker_context) -> None:
    account = link(engine, config)
    dp = dm_poller(fake_dm)
    assert polling.poll_account(engine, dp, account).requests == 2  # has_more on page 1
    fake_dm.likes[ME].insert(0, dailymotion_video(42, CREATOR))
    assert polling.poll_account(engine, dp, account).likes == 1
    assert jobs.drain()["flattred"] == 1
    thing = flattred_thing(engine)
    assert (thing.platform, thing.content_id, thing.owner, thing.url, thing.title) == (
        "dailymotion", "x000042", CREATOR, "https://www.dailymotion.com/video/x000042",
        "Video 42")
    fake_dm.likes[ME].pop(0)
    assert polling.poll_account(engine, dp, account).unlikes == 1
    assert jobs.drain()["unliked"] == 1


def test_requests_go_through_the_guard_unless_routed_to_api_base(engine, config,
                                                                 fake_dm) -> None:
    session = dm_poller(fake_dm).session()
    assert isinstance(session.get_adapter("https://elsewhere.example/x"), GuardedAdapter)
    assert isinstance(session.get_adapter(f"{API}/me/likes"), RouteAdapter)
    account = link(engine, config)
    unrouted = dm_poller(fake_dm, api_base="", guard=Guard(nameservers=("127.0.0.1",),
                                                           dns_port=9, dns_timeout=0.5))
    assert polling.poll_account(engine, unrouted, account).status == "error"
    assert "Unresolved" in poll_row(engine, account).last_error


def test_hostile_items_are_skipped_and_logged(engine, config, fake_dm, worker_context) -> None:
    account = link(engine, config)
    fake_dm.page_size = 100
    dp = dm_poller(fake_dm)
    polling.poll_account(engine, dp, account)
    hostile = [
        {"id": ["x1"], "title": "a list for an id", "url": "https://www.dailymotion.com/video/x1",
         "owner": CREATOR},
        {"id": "x1abc", "title": "a link elsewhere", "url": "http://www.dailymotion.com/x1abc",
         "owner": CREATOR},
        {"id": "x1abd", "title": "a lookalike host", "url": "https://dailymotion.com.evil.example/",
         "owner": CREATOR},
        {"id": "x1abe", "title": "no owner", "url": "https://www.dailymotion.com/video/x1abe",
         "owner": None},
        {"id": "x1abf", "title": "an owner object", "owner": {"id": CREATOR},
         "url": "https://www.dailymotion.com/video/x1abf"},
        {"id": "../../etc", "title": "not an id", "owner": CREATOR,
         "url": "https://www.dailymotion.com/video/x1abg"},
        dailymotion_video(7, CREATOR) | {"url": "https://www.dailymotion.com/" + "a" * 5000},
        dailymotion_video(8, CREATOR) | {"title": 12345},
    ]
    fake_dm.likes[ME][:0] = hostile
    with capture_logs() as logs:
        outcome = polling.poll_account(engine, dp, account)
    assert (outcome.status, outcome.likes) == ("polled", 1)  # video 8, without a title
    assert sum(e["event"] == "poll_item_skipped" for e in logs) == len(hostile) - 1
    assert jobs.drain()["flattred"] == 1
    thing = flattred_thing(engine)
    assert (thing.content_id, thing.title) == ("x000008", None)


def test_a_has_more_that_is_not_a_boolean_unlikes_nothing(engine, config, fake_dm) -> None:
    account = link(engine, config)
    fake_dm.page_size = 100
    dp = dm_poller(fake_dm)
    polling.poll_account(engine, dp, account)
    fake_dm.likes[ME].clear()
    for has_more in ("false", "yes", 0, []):
        fake_dm.has_more = has_more
        outcome = polling.poll_account(engine, dp, account)
        assert (outcome.status, outcome.unlikes) == ("polled", 0)
    fake_dm.has_more = False
    assert polling.poll_account(engine, dp, account).unlikes == 2


def test_429_waits_for_retry_after(engine, config, fake_dm) -> None:
    account = link(engine, config)
    fake_dm.window_requests = 0
    before = utcnow()
    assert polling.poll_account(engine, dm_poller(fake_dm), account).status == "rate_limited"
    state = poll_row(engine, account)
    assert before + timedelta(seconds=110) < state.next_poll_at < before + timedelta(seconds=140)


def test_an_expired_token_is_refreshed_with_the_secret_in_the_form(engine, config,
                                                                   fake_dm) -> None:
    account = link(engine, config)
    fake_dm.expire("dm-token")
    assert polling.poll_account(engine, dm_poller(fake_dm), account).status == "baseline"
    state = poll_row(engine, account)
    assert (VAULT.open(state.access_token), VAULT.open(state.refresh_token)) == (
        "access-1", "refresh-1")
    fake_dm.expire("access-1")
    fake_dm.refresh_tokens.clear()
    assert polling.poll_account(engine, dm_poller(fake_dm), account).status == "relink"
    assert poll_row(engine, account).state == "relink"
