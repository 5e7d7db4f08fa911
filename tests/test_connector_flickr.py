"""Flickr: the favourites poller driven by the real `flickrapi` client against a local fake
that checks every OAuth 1.0a signature (fave → flattr → unfave → retraction, incremental
`min_fave_date` polls and full listings, hostile answers, revoked tokens, 429), and linking
by OAuth 1.0a (request token → authorize → access token) through the hub's web pages."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text
from structlog.testing import capture_logs
from yarl import URL

from base.config import Settings, with_overrides
from base.tables.connectors import poll_accounts, poll_seen
from base.vault import Vault, vault
from connectors import polling
from connectors.flickr import FlickrPoller, poller
from hub.app import create_app
from ledger import accounts
from ledger.schema import flattrs, identities, things
from ledger.sql import utcnow
from ledger.verify import verify
from members import linking
from tests.fakes.flickr import API_KEY, API_SECRET, FakeFlickr, fixture_faves, photo
from tests.fakes.server import serve
from tests.hub_helpers import reinstall
from tests.test_pollers import run_cli
from tests.web_helpers import post_form, sign_up
from workers import jobs, pollers

pytest_plugins = ["tests.hub_fixtures"]
VAULT = Vault(Fernet.generate_key())

ME = "66956608@N00"
LUMEN = "12037949754@N01"
TOKEN, SECRET = "72157626737672178-022bbd2f4c2f3432", "fccb68c4e6103197"


@pytest.fixture
def fake():
    flickr = FakeFlickr()
    flickr.add_user(ME, "pjotr", TOKEN, SECRET, fixture_faves())
    with serve(flickr.app()) as url:
        flickr.url = url
        yield flickr


def flickr_poller(fake: FakeFlickr, **overrides: Any) -> FlickrPoller:
    return FlickrPoller(**{"api_key": API_KEY, "api_secret": API_SECRET, "api_base": fake.url,
                           "full_listing_seconds": 0, "vault": VAULT, **overrides})


def link(engine, config) -> int:
    """pjotr (with a budget and funds) links his Flickr account; lumen, who owns the photos
    he faves, has linked (and claimed) hers."""
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "pjotr")
        accounts.set_budget(conn, uid, 500, config.money)
        accounts.credit_funds(conn, uid, 2000, "test", "test:pjotr")
        lumen = accounts.create_user(conn, "lumen")
        linking.link_account(conn, lumen, "flickr", LUMEN, vault=VAULT, access_token="unused",
                             token_secret="unused")
        return linking.link_account(conn, uid, "flickr", ME, vault=VAULT, access_token=TOKEN,
                                    token_secret=SECRET)


def row(engine, account: int):
    with engine.connect() as conn:
        return conn.execute(select(poll_accounts).where(poll_accounts.c.id == account)).one()


def seen(engine, account: int) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(poll_seen.c.content_id).where(
            poll_seen.c.account_id == account)).scalars())


def test_poller_is_off_without_an_api_key(config) -> None:
    assert poller(config) is None
    config = with_overrides(config, {"connectors.flickr": dict(api_key="key", api_secret="secret")})
    assert isinstance(poller(config), FlickrPoller)


def test_fave_becomes_a_flattr_and_unfave_retracts_it(engine, config, fake,
                                                      worker_context) -> None:
    account = link(engine, config)
    fp = flickr_poller(fake)
    assert polling.poll_account(engine, fp, account).status == "baseline"
    assert seen(engine, account) == {"53312345678", "53298765432"}
    faved_at = int(time.time()) - 120
    fake.faves[ME].insert(0, photo(7, LUMEN, faved_at, title="Fog over the harbour"))
    assert polling.poll_account(engine, fp, account).likes == 1
    assert jobs.drain()["flattred"] == 1
    with engine.connect() as conn:
        made = conn.execute(select(things).where(things.c.platform == "flickr")).one()
        flattr = conn.execute(select(flattrs)).one()
    assert (made.content_id, made.url, made.title) == (
        "7", f"https://www.flickr.com/photos/{LUMEN}/7/", "Fog over the harbour")
    assert flattr.occurred_at == datetime.fromtimestamp(faved_at, UTC).replace(tzinfo=None)
    fake.faves[ME].pop(0)
    assert polling.poll_account(engine, fp, account).unlikes == 1
    assert jobs.drain()["unliked"] == 1
    with engine.connect() as conn:
        assert conn.execute(select(flattrs.c.retracted_at)).scalar() is not None
        assert verify(conn) == []
    [call] = fake.calls[-1:]
    assert (call["format"], call["nojsoncallback"], call["extras"]) == ("json", "1",
                                                                         "owner_name")


def test_incremental_polls_ask_for_new_faves_and_full_listings_find_unfaves(
        engine, config, fake, worker_context) -> None:
    account = link(engine, config)
    incremental = flickr_poller(fake, full_listing_seconds=10**9)
    assert polling.poll_account(engine, incremental, account).status == "baseline"
    assert "min_fave_date" not in fake.calls[-1]  # the baseline reads the whole list
    last = row(engine, account).last_polled_at
    fake.faves[ME].insert(0, photo(8, LUMEN))
    assert polling.poll_account(engine, incremental, account).likes == 1
    since = int(fake.calls[-1]["min_fave_date"])  # an hour before the last poll
    assert since == int(last.replace(tzinfo=UTC).timestamp()) - 3600
    fake.faves[ME] = [f for f in fake.faves[ME] if f["id"] != "53312345678"]
    assert polling.poll_account(engine, incremental, account).unlikes == 0  # can't see it
    assert "53312345678" in seen(engine, account)
    outcome = polling.poll_account(engine, flickr_poller(fake), account)  # a full listing
    assert (outcome.likes, outcome.unlikes) == (0, 1)
    assert "53312345678" not in seen(engine, account)
    assert jobs.drain()["flattred"] == 1


def test_a_full_listing_reads_every_page_and_only_then_sees_unfaves(engine, config, fake) -> None:
    account = link(engine, config)
    fake.faves[ME] = [photo(n, LUMEN, 1764000000 - n) for n in range(1, 6)]
    fp = flickr_poller(fake, per_page=2)
    outcome = polling.poll_account(engine, fp, account)
    assert (outcome.status, outcome.requests) == ("baseline", 3)
    fake.faves[ME].pop()
    fake.faves[ME].insert(0, photo(6, LUMEN))  # still three pages
    short = flickr_poller(fake, per_page=2, max_pages=2)  # stops before the last page
    outcome = polling.poll_account(engine, short, account)
    assert (outcome.likes, outcome.unlikes, outcome.requests) == (1, 0, 2)
    assert polling.poll_account(engine, fp, account).unlikes == 1


HOSTILE = [
    "not an object",
    {"id": "../../login", "owner": LUMEN, "title": "path"},
    {"id": "9", "owner": "javascript:alert(1)", "title": "owner"},
    {"id": True, "owner": LUMEN},
    {"owner": LUMEN, "title": "no id"},
]


def test_hostile_entries_are_skipped_and_logged_and_hide_no_unfave(
        engine, config, fake, worker_context) -> None:
    account = link(engine, config)
    fp = flickr_poller(fake)
    polling.poll_account(engine, fp, account)
    fake.faves[ME] = [photo(11, LUMEN, title="fine \u202e"),
                      photo(12, LUMEN, title="bad \ud800 title"),
                      {**photo(13, LUMEN), "date_faved": "99999999999"}]
    fake.extra_entries = HOSTILE
    with capture_logs() as logs:
        outcome = polling.poll_account(engine, fp, account)
    assert (outcome.likes, outcome.unlikes) == (2, 0)  # skipped entries: the list is incomplete
    assert seen(engine, account) >= {"11", "13"} and "12" not in seen(engine, account)
    [flickr_skip] = [e for e in logs if e["event"] == "poll_item_skipped" and "count" in e]
    assert flickr_skip["count"] == len(HOSTILE)
    assert any(e["event"] == "poll_item_skipped" and "count" not in e for e in logs)
    assert "javascript" not in repr(logs)
    jobs.drain()
    with engine.connect() as conn:
        made = conn.execute(select(things.c.content_id, flattrs.c.occurred_at)
                            .join(flattrs, flattrs.c.thing_id == things.c.id)
                            .where(things.c.content_id == "13")).one()
        assert made.occurred_at <= utcnow()  # a future date_faved is not believed
        assert verify(conn) == []


@pytest.mark.parametrize("body", ["<rsp stat=\"ok\"/>", "[1, 2]", '{"stat": "ok"}',
                                  '{"photos": {"photo": "x"}, "stat": "ok"}',
                                  '{"stat": "fail", "code": "x"}'])
def test_answers_that_are_not_flickrs_back_off_without_storing(engine, config, fake,
                                                                body) -> None:
    account = link(engine, config)
    fake.body_override = body
    outcome = polling.poll_account(engine, flickr_poller(fake), account)
    state = row(engine, account)
    assert (outcome.status, state.state, state.failures) == ("error", "active", 1)
    assert state.next_poll_at > utcnow() and seen(engine, account) == set()


def test_a_revoked_token_needs_a_relink_and_secrets_stay_sealed(engine, config, fake) -> None:
    account = link(engine, config)
    with engine.connect() as conn:
        raw = repr(conn.execute(text("SELECT * FROM poll_accounts")).all())
    assert TOKEN not in raw and SECRET not in raw
    assert VAULT.open(row(engine, account).token_secret) == SECRET
    del fake.access[TOKEN]
    assert polling.poll_account(engine, flickr_poller(fake), account).status == "relink"
    state = row(engine, account)
    assert state.state == "relink" and TOKEN not in state.last_error


def test_a_wrong_signature_is_refused_and_backs_off_without_relinking(engine, config,
                                                                      fake) -> None:
    account = link(engine, config)
    outcome = polling.poll_account(engine, flickr_poller(fake, api_secret="wrong"), account)
    assert (outcome.status, row(engine, account).state) == ("error", "active")
    assert fake.stats["bad_signature"] == 1 and "96" in row(engine, account).last_error


def test_429_waits_for_retry_after(engine, config, fake) -> None:
    account = link(engine, config)
    fake.limited = 1
    before = utcnow()
    assert polling.poll_account(engine, flickr_poller(fake), account).status == "rate_limited"
    state = row(engine, account)
    assert state.last_error == "rate limited (429)"
    assert state.next_poll_at >= before + timedelta(seconds=110)


# --- linking by OAuth 1.0a ------------------------------------------------------------------

@pytest.fixture
def served_fake():
    flickr = FakeFlickr(signed_in=ME)
    flickr.usernames[ME] = "pjotr on flickr"
    with serve(flickr.app()) as url:
        flickr.url = url
        yield flickr


@pytest.fixture
async def client(served_fake, aiohttp_client: Any, hub_config: Settings, engine: Any,
                 redis: Any) -> Any:
    base = served_fake.url
    hub_config = with_overrides(hub_config, {"connectors.flickr": dict(
        api_key=API_KEY, api_secret=API_SECRET, api_base=base,
        oauth_request_token_url=f"{base}/services/oauth/request_token",
        oauth_authorize_url=f"{base}/services/oauth/authorize",
        oauth_access_token_url=f"{base}/services/oauth/access_token")})
    return await aiohttp_client(create_app(hub_config, engine, redis))


async def authorize(client: Any, start: str) -> URL:
    reply = await post_form(client, start, {}, token_from="/accounts" if "link" in start
                            else "/login")
    assert reply.status == 303, await reply.text()
    sent_to = URL(reply.headers["Location"])
    assert sent_to.path == "/services/oauth/authorize" and sent_to.query["perms"] == "read"
    async with aiohttp.ClientSession() as browser:
        approved = await browser.get(sent_to, allow_redirects=False)
    assert approved.status == 302, await approved.text()
    return URL(approved.headers["Location"])


async def test_linking_by_oauth1_stores_the_sealed_token_pair_the_poller_signs_with(
        client, served_fake, engine, hub_config) -> None:
    await sign_up(client, "ana")
    back = await authorize(client, "/accounts/link/flickr")
    assert set(back.query) == {"oauth_token", "oauth_verifier"}
    reply = await client.get(back.path_qs, allow_redirects=False)
    assert (reply.status, reply.headers["Location"]) == (303, "/accounts")
    with engine.connect() as conn:
        found = conn.execute(select(identities).where(identities.c.platform == "flickr")).one()
        ana = accounts.user_id(conn, "ana")
        [stored] = conn.execute(select(poll_accounts)).all()
        raw = repr(conn.execute(text("SELECT * FROM poll_accounts")).all())
    assert (found.platform_user_id, found.linked_user_id, found.claimed_by, found.username) == (
        ME, ana, ana, "pjotr on flickr")
    [(token, (secret, nsid))] = served_fake.access.items()
    sealer = vault(hub_config)
    assert (sealer.open(stored.access_token), sealer.open(stored.token_secret), nsid) == (
        token, secret, ME)
    assert token not in raw and secret not in raw and stored.refresh_token is None
    page = await (await client.get("/accounts")).text()
    assert "Flickr account is linked" in page
    served_fake.faves[ME] = [photo(21, LUMEN)]
    fp = FlickrPoller(API_KEY, API_SECRET, served_fake.url, vault=sealer)
    assert polling.poll_account(engine, fp, stored.id).status == "baseline"  # it signs


async def test_a_forged_verifier_or_a_replayed_callback_links_nothing(
        client, served_fake, engine) -> None:
    await sign_up(client, "ana")
    back = await authorize(client, "/accounts/link/flickr")
    [(request_token, grant)] = served_fake.pending.items()
    with engine.connect() as conn:
        pending = repr(conn.execute(text("SELECT * FROM oauth_pending")).all())
    assert grant["secret"] not in pending and request_token not in pending  # sealed, hashed
    forged = await client.get(back.update_query(oauth_verifier="guessed").path_qs,
                              allow_redirects=False)
    assert forged.status == 400 and "did not accept" in await forged.text()
    replay = await client.get(back.path_qs, allow_redirects=False)
    assert replay.status == 400  # the pending authorisation was used up
    with engine.connect() as conn:
        assert conn.execute(select(identities).where(identities.c.platform == "flickr")
                            ).first() is None
    assert served_fake.stats["access_token"] == 0


async def test_logging_in_with_flickr_signs_up_a_member(client, served_fake, engine) -> None:
    back = await authorize(client, "/login/flickr")
    reply = await client.get(back.path_qs, allow_redirects=False)
    assert (reply.status, reply.headers["Location"]) == (303, "/dashboard")
    with engine.connect() as conn:
        owner = conn.execute(select(identities.c.linked_user_id).where(
            identities.c.platform == "flickr", identities.c.platform_user_id == ME)).scalar()
    assert owner is not None


async def test_linking_is_off_without_an_api_key(hub_client) -> None:
    await sign_up(hub_client, "ana")
    reply = await post_form(hub_client, "/accounts/link/flickr", {}, token_from="/accounts")
    assert reply.status == 404


def test_cli_links_a_flickr_account_with_its_token_secret(monkeypatch, capsys, db_url, tmp_path,
                                                          engine, config) -> None:
    with engine.begin() as conn:
        accounts.create_user(conn, "ana")
    code, _, err = run_cli(monkeypatch, capsys, db_url, tmp_path, "connectors", "link", "ana",
                           "flickr", ME, env={"FLATTR_LINK_ACCESS_TOKEN": TOKEN})
    assert code == 2 and "FLATTR_LINK_TOKEN_SECRET" in err and err.count("\n") == 1
    code, out, _ = run_cli(monkeypatch, capsys, db_url, tmp_path, "connectors", "link", "ana",
                           "flickr", ME, stdin=f"{TOKEN}\n{SECRET}\n")
    assert code == 0 and TOKEN not in out and SECRET not in out
    with engine.connect() as conn:
        stored = conn.execute(select(poll_accounts)).one()
    assert (vault(config).open(stored.access_token), vault(config).open(stored.token_secret),
            stored.refresh_token) == (TOKEN, SECRET, None)


def test_poll_jobs_are_paced_under_the_keys_hourly_limit(engine, hub_config, fake,
                                                        worker_context) -> None:
    worker_context = reinstall(worker_context, {"connectors.flickr": dict(
        api_key=API_KEY, api_secret=API_SECRET, api_base=fake.url, full_listing_seconds=0)})
    hub_config = worker_context.config
    assert "flickr" in pollers.enabled_platforms(hub_config)
    assert pollers.per_tick(hub_config, "flickr") * 60 < 3600  # a minute's polls, an hour
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "pjotr")
        account = linking.link_account(conn, uid, "flickr", ME, vault=vault(hub_config),
                                       access_token=TOKEN, token_secret=SECRET)
    assert pollers.poll_batch("flickr", [account]) == {
        "baseline": 1, "likes": 0, "unlikes": 0, "requests": 1}
