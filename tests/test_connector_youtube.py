"""YouTube: the liked-videos poller driven by google-api-python-client (built from its shipped
discovery document, `api_endpoint` pointed at a local fake of `videos?myRating=like`): like →
flattr → unlike → retraction across `nextPageToken` pages, hostile items skipped, the daily
quota honoured until midnight Pacific, an expired token refreshed at Google's token URL."""

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from structlog.testing import capture_logs

from base.config import with_overrides
from base.tables.connectors import poll_seen
from base.vault import Vault
from connectors import polling
from connectors.poll_http import MAX_ANSWER_BYTES
from connectors.youtube import YouTubePoller, poller, quota_reset
from tests.fakes.platforms import fixture
from tests.fakes.server import serve
from tests.fakes.video_platforms import FakeYouTube, youtube_video
from tests.poller_helpers import (
    flattred_thing,
    huge_answer_fails_one_poll,
    link_giver_and_creator,
    poll_row,
)
from workers import jobs

pytest_plugins = ["tests.hub_fixtures"]
VAULT = Vault(Fernet.generate_key())

ME, CREATOR = "UCmeMEmeMEmeMEmeMEmeMEme", "UC_x5XG1OV2P6uZZ5FSM9Ttw"


@pytest.fixture
def fake_yt():
    fake = FakeYouTube(page_size=1)
    fake.add_user(ME, "yt-token", "yt-refresh",
                  fixture("youtube-liked-videos-page.json")["items"])
    with serve(fake.app()) as url:
        fake.url = url
        yield fake


def yt_poller(fake: FakeYouTube, **overrides: Any) -> YouTubePoller:
    return YouTubePoller(**{"client_id": "cid", "client_secret": "cs", "api_base": fake.url,
                            "token_url": fake.url + "/token", "vault": VAULT, **overrides})


def link(engine, config) -> int:
    return link_giver_and_creator(engine, config, "youtube", vault=VAULT, giver_id=ME,
                                  creator_id=CREATOR, access_token="yt-token",
                                  refresh_token="yt-refresh")


def test_poller_is_off_without_a_client_id(config) -> None:
    assert poller(config) is None
    config = with_overrides(config, {"connectors.youtube.client_id": "cid"})
    assert isinstance(poller(config), YouTubePoller)


def test_like_flattr_unlike_retraction_through_pages(engine, config, fake_yt,
                                                     worker_context) -> None:
    account = link(engine, config)
    yp = yt_poller(fake_yt, max_pages=3)
    assert polling.poll_account(engine, yp, account).requests == 2  # one video per page
    fake_yt.likes[ME].insert(0, youtube_video(7, CREATOR))
    assert polling.poll_account(engine, yp, account).likes == 1
    assert jobs.drain()["flattred"] == 1
    thing = flattred_thing(engine)
    assert (thing.platform, thing.content_id, thing.owner, thing.url, thing.title) == (
        "youtube", "vid00000007", CREATOR, "https://www.youtube.com/watch?v=vid00000007",
        "Video 7")
    fake_yt.likes[ME].pop(0)
    assert polling.poll_account(engine, yp, account).unlikes == 1
    assert jobs.drain()["unliked"] == 1
    assert fake_yt.used_units == 2 + 3 + 2  # one unit per videos.list page


def test_a_partial_read_retracts_nothing_and_older_likes_coming_into_view_are_no_likes(
        engine, config, fake_yt) -> None:
    account = link(engine, config)
    yp = yt_poller(fake_yt)  # max_pages 2: the default, within the daily quota
    fake_yt.likes[ME] += [youtube_video(9, CREATOR), youtube_video(10, CREATOR)]
    assert polling.poll_account(engine, yp, account).requests == 2  # 2 of 4 pages
    fake_yt.likes[ME].pop(0)  # an unlike: video 9, liked long ago, moves into view
    outcome = polling.poll_account(engine, yp, account)
    assert (outcome.requests, outcome.likes, outcome.unlikes) == (2, 0, 0)
    with engine.connect() as conn:
        assert "vid00000009" in set(conn.execute(select(poll_seen.c.content_id).where(
            poll_seen.c.account_id == account)).scalars())
    fake_yt.likes[ME].insert(0, youtube_video(11, CREATOR))  # a new like: on top
    assert polling.poll_account(engine, yp, account).likes == 1
    fake_yt.likes[ME][1:] = []  # unlikes down to one: the list is read whole again
    fake_yt.likes[ME].append(youtube_video(10, CREATOR))  # never seen, below a seen one
    outcome = polling.poll_account(engine, yp, account)
    assert (outcome.likes, outcome.unlikes) == (0, 3)


def test_hostile_items_are_skipped_and_logged(engine, config, fake_yt, worker_context) -> None:
    account = link(engine, config)
    fake_yt.page_size = 50
    yp = yt_poller(fake_yt)
    polling.poll_account(engine, yp, account)
    hostile = [
        {"id": {"kind": "youtube#video", "videoId": "abcdefghijk"}, "snippet": {
            "channelId": CREATOR, "title": "a search-result id object"}},
        {"id": "short", "snippet": {"channelId": CREATOR}},
        {"id": "abc/../x?y=1", "snippet": {"channelId": CREATOR}},
        {"id": "abcdefghijl", "snippet": {"channelId": "not a channel"}},
        {"id": "abcdefghijm", "snippet": "no snippet object"},
        {"id": "abcdefghijn"},
        [],
        youtube_video(3, CREATOR) | {"snippet": {"channelId": CREATOR, "title": ["x"]}},
    ]
    fake_yt.likes[ME][:0] = hostile
    with capture_logs() as logs:
        outcome = polling.poll_account(engine, yp, account)
    assert (outcome.status, outcome.likes) == ("polled", 1)
    assert sum(e["event"] == "poll_item_skipped" for e in logs) == len(hostile) - 1
    assert jobs.drain()["flattred"] == 1
    assert flattred_thing(engine).content_id == "vid00000003"


def test_answers_that_are_not_a_page_back_off(engine, config, fake_yt) -> None:
    account = link(engine, config)
    for answer in ("{not json", "[1, 2]", '"text"', '{"items": {"id": "x"}}'):
        fake_yt.answer = answer
        assert polling.poll_account(engine, yt_poller(fake_yt), account).status == "error"
    assert poll_row(engine, account).failures == 4


def test_a_huge_page_fails_the_poll_and_records_nothing(engine, config, fake_yt) -> None:
    """httplib2 reads an answer whole: the poller's transport caps what it reads."""
    huge = json.dumps({"items": [youtube_video(n, CREATOR) for n in range(20000)]})
    assert len(huge) > MAX_ANSWER_BYTES
    huge_answer_fails_one_poll(engine, link(engine, config), lambda: yt_poller(fake_yt),
                               lambda body: setattr(fake_yt, "answer", body), huge)


def test_quota_exceeded_waits_until_midnight_pacific(engine, config, fake_yt) -> None:
    account = link(engine, config)
    fake_yt.quota = 0
    assert polling.poll_account(engine, yt_poller(fake_yt), account).status == "rate_limited"
    state = poll_row(engine, account)
    reset = quota_reset()
    assert reset - timedelta(seconds=10) < state.next_poll_at < reset + timedelta(seconds=10)
    assert fake_yt.stats["quota"] == 1


def test_quota_resets_at_midnight_pacific_in_utc() -> None:
    assert quota_reset(datetime(2026, 12, 1, 7, 0)) == datetime(2026, 12, 1, 8, 0)  # PST
    assert quota_reset(datetime(2026, 12, 1, 8, 30)) == datetime(2026, 12, 2, 8, 0)
    assert quota_reset(datetime(2026, 7, 1, 12, 0)) == datetime(2026, 7, 2, 7, 0)  # PDT


def test_an_expired_token_is_refreshed_at_the_token_url(engine, config, fake_yt) -> None:
    account = link(engine, config)
    fake_yt.expire("yt-token")
    assert polling.poll_account(engine, yt_poller(fake_yt), account).status == "baseline"
    state = poll_row(engine, account)
    assert (VAULT.open(state.access_token), VAULT.open(state.refresh_token)) == (
        "access-1", "refresh-1")
    assert (fake_yt.stats["401"], fake_yt.stats["refresh"]) == (1, 1)
    fake_yt.expire("access-1")
    fake_yt.refresh_tokens.clear()
    assert polling.poll_account(engine, yt_poller(fake_yt), account).status == "relink"
