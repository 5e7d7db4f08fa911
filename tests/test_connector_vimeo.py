"""Vimeo: the liked-videos poller driven by PyVimeo against a local fake of `GET /me/likes`
(paged, rate-limit headers): like → flattr → unlike → retraction, hostile items skipped, the
rate limit honoured, a revoked token needing a relink."""

import json
from datetime import UTC, datetime, timedelta
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
from connectors.vimeo import VimeoPoller, poller, rate_reset
from ledger.schema import flattrs, things
from tests.fakes.platforms import fixture
from tests.fakes.server import serve
from tests.fakes.video_platforms import FakeVimeo, vimeo_video
from tests.poller_helpers import (
    flattred_thing,
    huge_answer_fails_one_poll,
    link_giver_and_creator,
    poll_row,
)
from workers import jobs

pytest_plugins = ["tests.hub_fixtures"]
VAULT = Vault(Fernet.generate_key())

ME, CREATOR = "4711", "152184"


@pytest.fixture
def fake_vimeo():
    fake = FakeVimeo(page_size=1)
    fake.add_user(ME, "vimeo-token", likes=fixture("vimeo-likes-page.json")["data"])
    with serve(fake.app()) as url:
        fake.url = url
        yield fake


def vimeo_poller(fake: FakeVimeo, **overrides: Any) -> VimeoPoller:
    return VimeoPoller(**{"client_id": "cid", "client_secret": "cs", "api_base": fake.url,
                          "vault": VAULT, **overrides})


def link(engine, config) -> int:
    return link_giver_and_creator(engine, config, "vimeo", vault=VAULT, giver_id=ME,
                                  creator_id=CREATOR, access_token="vimeo-token")


def test_poller_is_off_without_a_client_id(config) -> None:
    assert poller(config) is None
    config = with_overrides(config, {"connectors.vimeo.client_id": "cid"})
    assert isinstance(poller(config), VimeoPoller)


def test_like_flattr_unlike_retraction_through_pages(engine, config, fake_vimeo,
                                                     worker_context) -> None:
    account = link(engine, config)
    vp = vimeo_poller(fake_vimeo)
    outcome = polling.poll_account(engine, vp, account)
    assert (outcome.status, outcome.requests) == ("baseline", 2)  # one video per page
    with engine.connect() as conn:
        assert set(conn.execute(select(poll_seen.c.content_id).where(
            poll_seen.c.account_id == account)).scalars()) == {"76979871", "1084537"}
    assert fake_vimeo.stats["fields:uri,name,link,user.uri"] == 2
    fake_vimeo.likes[ME].insert(0, vimeo_video(900, int(CREATOR)))
    assert polling.poll_account(engine, vp, account).likes == 1
    assert jobs.drain()["flattred"] == 1  # the creator linked (and claimed) their account
    thing = flattred_thing(engine)
    assert (thing.platform, thing.content_id, thing.owner, thing.url, thing.title) == (
        "vimeo", "900", CREATOR, "https://vimeo.com/900", "Video 900")
    fake_vimeo.likes[ME].pop(0)
    assert polling.poll_account(engine, vp, account).unlikes == 1
    assert jobs.drain()["unliked"] == 1


def test_hostile_items_are_skipped_and_logged_and_the_rest_recorded(
        engine, config, fake_vimeo, worker_context) -> None:
    account = link(engine, config)
    fake_vimeo.page_size = 100
    vp = vimeo_poller(fake_vimeo)
    polling.poll_account(engine, vp, account)
    hostile = [
        {"uri": 12, "name": "an id of the wrong type", "link": "https://vimeo.com/12",
         "user": {"uri": "/users/1"}},
        {"uri": "/videos/13", "name": "a list for a user", "link": "https://vimeo.com/13",
         "user": ["/users/1"]},
        {"uri": "/videos/14", "name": "a link elsewhere", "link": "https://evil.example/14",
         "user": {"uri": "/users/1"}},
        {"uri": "/videos/15", "name": "no link", "link": "javascript:alert(1)",
         "user": {"uri": "/users/1"}},
        {"uri": "/videos/" + "9" * 100_000, "name": "a huge id",
         "link": "https://vimeo.com/16", "user": {"uri": "/users/1"}},
        "not an object",
        None,
        vimeo_video(17, int(CREATOR)) | {"name": "\ud800 lone surrogate"},
        vimeo_video(18, int(CREATOR)) | {"name": "T" * 1_000_000},
    ]
    fake_vimeo.likes[ME][:0] = hostile
    with capture_logs() as logs:
        outcome = polling.poll_account(engine, vp, account)
    assert (outcome.status, outcome.likes) == ("polled", 1)  # video 18, its title cut
    skipped = [entry for entry in logs if entry["event"] == "poll_item_skipped"]
    assert len(skipped) == len(hostile) - 1
    assert all("evil" not in entry["reason"] and "9999" not in entry["reason"]
               for entry in skipped)
    assert jobs.drain()["flattred"] == 1
    with engine.connect() as conn:
        thing = conn.execute(select(things).join(flattrs, flattrs.c.thing_id == things.c.id)).one()
    assert (thing.content_id, len(thing.title)) == ("18", 512)


def test_a_page_that_is_not_vimeos_shape_backs_off(engine, config, fake_vimeo) -> None:
    account = link(engine, config)
    for answer in ({"data": {"not": "a list"}}, ["a", "list"], "text"):
        fake_vimeo.answer = answer
        assert polling.poll_account(engine, vimeo_poller(fake_vimeo), account).status == "error"
    state = poll_row(engine, account)
    assert (state.failures, state.baseline_done) == (3, False)


def test_a_page_without_documented_paging_unlikes_nothing(engine, config, fake_vimeo) -> None:
    account = link(engine, config)
    fake_vimeo.page_size = 100
    vp = vimeo_poller(fake_vimeo)
    polling.poll_account(engine, vp, account)
    for paging in ({}, {"next": 2}, "none"):
        fake_vimeo.answer = {"data": [], "paging": paging} if paging != {} else {"data": []}
        outcome = polling.poll_account(engine, vp, account)
        assert (outcome.status, outcome.unlikes) == ("polled", 0)
    fake_vimeo.answer = {"data": [], "paging": {"next": None}}
    assert polling.poll_account(engine, vp, account).unlikes == 2  # documented: the end


def test_429_waits_for_the_iso_reset_time(engine, config, fake_vimeo) -> None:
    account = link(engine, config)
    fake_vimeo.window_requests = 0
    before = datetime.now(UTC).replace(tzinfo=None)
    outcome = polling.poll_account(engine, vimeo_poller(fake_vimeo), account)
    assert outcome.status == "rate_limited"
    state = poll_row(engine, account)
    assert state.last_error == "rate limited (429)"
    # the fake's window resets 900 s after it opened; the account waits for it
    assert state.next_poll_at > before + timedelta(seconds=800)


def test_paging_stops_when_no_requests_remain(engine, config, fake_vimeo) -> None:
    account = link(engine, config)
    fake_vimeo.window_requests = 1  # the first page answers X-RateLimit-Remaining: 0
    outcome = polling.poll_account(engine, vimeo_poller(fake_vimeo), account)
    assert (outcome.status, outcome.requests) == ("baseline", 1)
    assert fake_vimeo.stats["429"] == 0


def test_a_revoked_token_needs_a_relink(engine, config, fake_vimeo) -> None:
    account = link(engine, config)
    fake_vimeo.expire("vimeo-token")
    assert polling.poll_account(engine, vimeo_poller(fake_vimeo), account).status == "relink"
    state = poll_row(engine, account)
    assert state.state == "relink" and "vimeo-token" not in (state.last_error or "")


def test_a_huge_page_fails_the_poll_and_records_nothing(engine, config, fake_vimeo) -> None:
    """PyVimeo sends through `requests.get`, not a session: the poller passes the cap as a hook."""
    huge = {"data": [vimeo_video(n, 152184) for n in range(40000)], "paging": {"next": None}}
    assert len(json.dumps(huge)) > MAX_ANSWER_BYTES
    huge_answer_fails_one_poll(engine, link(engine, config), lambda: vimeo_poller(fake_vimeo),
                               lambda body: setattr(fake_vimeo, "answer", body), huge)


def test_reset_header_forms() -> None:
    assert rate_reset({"X-RateLimit-Reset": "2026-12-01T15:00:00+01:00"}) == datetime(
        2026, 12, 1, 14, 0)
    assert rate_reset({"X-RateLimit-Reset": "1764597600"}) == datetime(2025, 12, 1, 14, 0)
    assert rate_reset({"X-RateLimit-Reset": "soon"}) is None
    assert rate_reset({}) is None
