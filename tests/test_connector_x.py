"""X: the Account Activity webhook (CRC, signatures, both like directions, dedupe) through the
real hub, and the liked-tweets poller driving tweepy against a local fake API."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from base.config import with_overrides
from base.tables.connectors import poll_accounts, poll_seen
from base.vault import Vault
from connectors import poll_diff, polling
from connectors.x import XPoller
from hub.app import create_app
from ledger import accounts, identities
from ledger.schema import flattrs
from ledger.schema import identities as identities_table
from ledger.sql import utcnow
from members import linking
from pipeline import inbox
from tests.fakes.platforms import FakeX, fixture, tweet
from tests.fakes.server import serve
from workers import jobs

pytest_plugins = ["tests.hub_fixtures"]
VAULT = Vault(Fernet.generate_key())

SECRET = "x-consumer-secret-for-tests"
PJOTR, LUMEN, ANNIKA = "1457203311", "2210098765", "3300112233"


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"x-twitter-webhooks-signature": "sha256=" + base64.b64encode(mac).decode(),
            "Content-Type": "application/json"}


@pytest.fixture
async def x_client(aiohttp_client: Any, hub_config, engine, redis) -> Any:
    hub_config = with_overrides(hub_config, {"connectors.x.consumer_secret": SECRET})
    return await aiohttp_client(create_app(hub_config, engine, redis))


def users(engine, config) -> dict[str, int]:
    """pjotr (X 1457203311, funded, claims), lumen (claims 2210098765), annika (gives)."""
    made = {}
    with engine.begin() as conn:
        for name, x_id in (("pjotr", PJOTR), ("lumen", LUMEN), ("annika", ANNIKA)):
            uid = made[name] = accounts.create_user(conn, name)
            accounts.set_budget(conn, uid, 500, config.money)
            accounts.credit_funds(conn, uid, 2000, "test", f"test:{name}")
            identities.link(conn, uid, "x", x_id, claim=True)
    return made


def flattr_rows(engine):
    from ledger.schema import things

    with engine.connect() as conn:
        return conn.execute(
            select(flattrs.c.giver_id, things.c.content_id, flattrs.c.retracted_at)
            .join(things, things.c.id == flattrs.c.thing_id).order_by(flattrs.c.id)).all()


# --- webhook --------------------------------------------------------------------------------

async def test_crc_answers_the_base64_hmac_of_the_token(x_client) -> None:
    response = await x_client.get("/webhooks/x", params={"crc_token": "challenge-123"})
    assert response.status == 200
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), b"challenge-123", hashlib.sha256).digest()).decode()
    assert await response.json() == {"response_token": "sha256=" + expected}
    missing = await x_client.get("/webhooks/x")
    assert missing.status == 400


async def test_x_is_off_without_its_secret(hub_client) -> None:
    assert (await hub_client.get("/webhooks/x", params={"crc_token": "t"})).status == 404
    body = (fixture_bytes := json.dumps(fixture("x-favorite-events.json")).encode())
    response = await hub_client.post("/webhooks/x", data=fixture_bytes, headers=sign(body))
    assert response.status == 404


@pytest.mark.parametrize("signature", [
    None, "", "sha256=", "sha256=AAAA", "other-secret", "hex",
])
async def test_unsigned_or_forged_deliveries_get_401_and_store_nothing(
        x_client, engine, signature) -> None:
    body = json.dumps(fixture("x-favorite-events.json")).encode()
    if signature == "other-secret":
        forged = sign(body, "another-secret")
    elif signature == "hex":  # GitHub's hex form is not X's base64 form
        forged = {"x-twitter-webhooks-signature": "sha256=" + hmac.new(
            SECRET.encode(), body, hashlib.sha256).hexdigest()}
    else:
        forged = {} if signature is None else {"x-twitter-webhooks-signature": signature}
    response = await x_client.post("/webhooks/x", data=body, headers=forged)
    assert response.status == 401
    assert SECRET not in await response.text()
    with engine.connect() as conn:
        assert inbox.pending_count(conn) == 0


async def test_one_changed_byte_is_refused(x_client) -> None:
    body = json.dumps(fixture("x-favorite-events.json")).encode()
    headers = sign(body)
    response = await x_client.post("/webhooks/x", data=body.replace(b"1457", b"1458", 1),
                                   headers=headers)
    assert response.status == 401


async def test_likes_in_both_directions_reach_the_ledger_once(
        x_client, engine, hub_config, worker_context) -> None:
    made = users(engine, hub_config)
    body = json.dumps(fixture("x-favorite-events.json")).encode()
    response = await x_client.post("/webhooks/x", data=body, headers=sign(body))
    assert response.status == 200  # X retries anything else
    assert await response.json() == {"accepted": 2, "by_user": 1, "of_user": 1}
    # X does not sign a timestamp: the same delivery again is stored, and deduplicated later
    again = await x_client.post("/webhooks/x", data=body, headers=sign(body))
    assert again.status == 200
    totals = jobs.drain()
    assert totals["rows"] == 4 and totals["flattred"] == 2 and totals["duplicate"] == 2
    rows = flattr_rows(engine)
    assert [(r.giver_id, r.content_id) for r in rows] == [
        (made["pjotr"], "1842211330197712896"),   # by the subscribed user
        (made["annika"], "1842200000000000001"),  # of the subscribed user's post
    ]


async def test_events_not_involving_the_subscribed_user_and_other_events_are_dropped(
        x_client, engine) -> None:
    payload = fixture("x-favorite-events.json")
    payload["for_user_id"] = "999"
    body = json.dumps(payload).encode()
    response = await x_client.post("/webhooks/x", data=body, headers=sign(body))
    assert (response.status, await response.json()) == (200, {"accepted": 0, "by_user": 0,
                                                             "of_user": 0})
    body = json.dumps({"for_user_id": PJOTR, "tweet_create_events": [{}]}).encode()
    assert (await x_client.post("/webhooks/x", data=body, headers=sign(body))).status == 200
    body = json.dumps({"for_user_id": PJOTR, "favorite_events": [{"id": "1"}]}).encode()
    response = await x_client.post("/webhooks/x", data=body, headers=sign(body))
    assert response.status == 400
    assert (await response.json())["error_description"] == "payload lacks user"


# --- poller ---------------------------------------------------------------------------------

def fixture_likes() -> list[dict[str, Any]]:
    return fixture("x-liked-tweets-page1.json")["data"] + fixture(
        "x-liked-tweets-page2.json")["data"]


@pytest.fixture
def fake_x():
    fake = FakeX(page_size=2)
    fake.add_user(PJOTR, "token-pjotr", "refresh-pjotr", fixture_likes())
    with serve(fake.app()) as url:
        fake.url = url
        yield fake


def x_poller(fake: FakeX, **overrides: Any) -> XPoller:
    settings = {"client_id": "cid", "client_secret": "csecret", "api_base": fake.url,
                "vault": VAULT, **overrides}
    return XPoller(**settings)


def link_account(engine, config, uid: int | None = None, token: str = "token-pjotr") -> int:
    with engine.begin() as conn:
        if uid is None:
            uid = accounts.create_user(conn, "pjotr")
            accounts.set_budget(conn, uid, 500, config.money)
            accounts.credit_funds(conn, uid, 2000, "test", "test:pjotr")
        return linking.link_account(conn, uid, "x", PJOTR, vault=VAULT, access_token=token,
                                    refresh_token="refresh-pjotr")


def account_row(engine, account_id: int):
    with engine.connect() as conn:
        return conn.execute(select(poll_accounts).where(poll_accounts.c.id == account_id)).one()


def seen(engine, account_id: int) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(poll_seen.c.content_id).where(
            poll_seen.c.account_id == account_id)).scalars())


def test_first_poll_is_a_baseline_read_page_by_page_with_tweepy(
        engine, config, fake_x) -> None:
    account = link_account(engine, config)
    outcome = polling.poll_account(engine, x_poller(fake_x), account)
    assert (outcome.status, outcome.likes, outcome.requests) == ("baseline", 0, 2)
    assert seen(engine, account) == {t["id"] for t in fixture_likes()}
    assert fake_x.stats["expansions:author_id"] == 2
    with engine.connect() as conn:
        assert inbox.pending_count(conn) == 0
    row = account_row(engine, account)
    assert row.baseline_done and row.window_requests == 2
    assert row.next_poll_at > utcnow() + timedelta(seconds=700)


def test_new_likes_and_unlikes_become_events_that_reach_the_ledger(
        engine, config, fake_x, worker_context) -> None:
    account = link_account(engine, config)
    with engine.begin() as conn:
        lumen = accounts.create_user(conn, "lumen")
        identities.link(conn, lumen, "x", LUMEN, claim=True)
        accounts.set_budget(conn, lumen, 200, config.money)
        accounts.credit_funds(conn, lumen, 300, "test", "test:lumen")
    poller = x_poller(fake_x)
    polling.poll_account(engine, poller, account)
    fake_x.likes[PJOTR].insert(0, tweet(1, LUMEN))
    fake_x.likes[PJOTR].insert(0, tweet(2, "7777"))  # author not on the hub: a pledge
    outcome = polling.poll_account(engine, poller, account)
    assert (outcome.status, outcome.likes, outcome.unlikes) == ("polled", 2, 0)
    with engine.connect() as conn:
        [first] = [r for r in conn.execute(select(inbox.inbox)).all()
                   if json.loads(r.event)["content_id"] == tweet(1, LUMEN)["id"]]
    totals = jobs.drain()
    assert (totals["flattred"], totals["pledge"]) == (1, 1)
    # the same observation replayed (a retried job) is the same event id: deduplicated
    del fake_x.likes[PJOTR][0:2]
    outcome = polling.poll_account(engine, poller, account)
    assert (outcome.likes, outcome.unlikes) == (0, 2)
    totals = jobs.drain()
    assert totals["unliked"] == 2
    assert all(r.retracted_at is not None for r in flattr_rows(engine))
    assert first.event_id.startswith("poll-")
    # liking again after the unlike is a new event (a new first-seen time)
    fake_x.likes[PJOTR].insert(0, tweet(1, LUMEN))
    assert polling.poll_account(engine, poller, account).likes == 1
    assert jobs.drain()["flattred"] == 1


def test_event_ids_are_deterministic_per_observation() -> None:
    moment = utcnow()
    a = poll_diff.event_id("x", "1", "2", "like", moment)
    assert a == poll_diff.event_id("x", "1", "2", "like", moment)
    assert a != poll_diff.event_id("x", "1", "2", "unlike", moment)
    assert a != poll_diff.event_id("x", "1", "2", "like", moment + timedelta(seconds=1))


def test_an_incomplete_snapshot_never_makes_unlikes(engine, config, fake_x) -> None:
    account = link_account(engine, config)
    poller = x_poller(fake_x, max_pages=1)
    assert polling.poll_account(engine, poller, account).requests == 1
    fake_x.likes[PJOTR].insert(0, tweet(9, LUMEN))
    outcome = polling.poll_account(engine, poller, account)
    assert (outcome.likes, outcome.unlikes) == (1, 0)


def test_429_waits_until_x_rate_limit_reset(engine, config, fake_x) -> None:
    fake_x.window_requests = 1
    account = link_account(engine, config)
    outcome = polling.poll_account(engine, x_poller(fake_x), account)
    assert outcome.status == "rate_limited"
    assert fake_x.stats["429"] == 1
    row = account_row(engine, account)
    start, _ = fake_x.windows["Bearer token-pjotr"]
    reset = datetime.fromtimestamp(int(start + 900), UTC).replace(tzinfo=None)
    assert abs(row.next_poll_at - reset - timedelta(seconds=5)) <= timedelta(seconds=1)
    assert row.window_requests == 2 and row.state == "active"  # page 1, then the 429


def test_the_per_user_window_is_kept_without_asking_x(engine, config, fake_x) -> None:
    account = link_account(engine, config)
    poller = x_poller(fake_x, window_requests=2)
    polling.poll_account(engine, poller, account)  # 2 requests: the window is full
    before = fake_x.stats["requests"]
    assert polling.poll_account(engine, poller, account).status == "window_full"
    assert fake_x.stats["requests"] == before
    assert account_row(engine, account).next_poll_at > utcnow() + timedelta(seconds=800)


def test_expired_token_is_refreshed_once_and_the_new_pair_stored(engine, config, fake_x) -> None:
    account = link_account(engine, config)
    fake_x.expire("token-pjotr")
    outcome = polling.poll_account(engine, x_poller(fake_x), account)
    assert outcome.status == "baseline"
    row = account_row(engine, account)
    assert tuple(map(VAULT.open, (row.access_token, row.refresh_token))) == (
        "access-1", "refresh-1")
    assert "refresh-pjotr" not in fake_x.refresh_tokens  # single-use


def test_a_token_that_cannot_be_refreshed_marks_the_account_for_relinking(
        engine, config, fake_x) -> None:
    account = link_account(engine, config)
    fake_x.expire("token-pjotr")
    fake_x.refresh_tokens.clear()
    outcome = polling.poll_account(engine, x_poller(fake_x), account)
    assert outcome.status == "relink"
    assert (fake_x.stats["401"], fake_x.stats["refresh"]) == (1, 1)  # no tight loop
    assert account_row(engine, account).state == "relink"
    assert polling.poll_account(engine, x_poller(fake_x), account).status == "skipped"
    assert fake_x.stats["401"] == 1


def test_server_errors_back_off(engine, config, fake_x) -> None:
    account = link_account(engine, config)
    poller = x_poller(fake_x, api_base="http://127.0.0.1:9")  # nothing listens there
    assert polling.poll_account(engine, poller, account).status == "error"
    first = account_row(engine, account)
    with engine.begin() as conn:
        conn.execute(update(poll_accounts).values(next_poll_at=utcnow()))
    polling.poll_account(engine, poller, account)
    second = account_row(engine, account)
    assert (first.failures, second.failures) == (1, 2)
    assert first.next_poll_at < utcnow() + timedelta(seconds=460)  # 900 * 2 / 4
    assert second.next_poll_at > utcnow() + timedelta(seconds=850)  # 900 * 4 / 4
    assert second.state == "active" and "unreachable" in second.last_error


def test_event_times_from_timestamp_ms_or_created_at() -> None:
    from connectors.x import normalise

    payload = fixture("x-favorite-events.json")
    first, second = payload["favorite_events"]
    first["timestamp_ms"] = str(first["timestamp_ms"])  # X sends it either way
    del second["timestamp_ms"]
    events = normalise(payload, {})
    assert [e.occurred_at.isoformat() for e in events] == [
        "2026-10-03T14:12:09", "2026-10-03T15:01:44"]
    assert [e.event_id for e in events] == [first["id"], second["id"]]


def test_accounts_whose_flattring_is_off_are_not_polled_and_rebaseline(
        engine, config, fake_x) -> None:
    account = link_account(engine, config)
    poller = x_poller(fake_x)
    polling.poll_account(engine, poller, account)
    with engine.begin() as conn:
        [identity] = conn.execute(select(identities_table.c.id, identities_table.c.linked_user_id)
                                  .where(identities_table.c.platform == "x")).all()
        identities.set_flattr_enabled(conn, identity.linked_user_id, identity.id, False)
    before = fake_x.stats["requests"]
    assert polling.poll_account(engine, poller, account).status == "skipped"
    assert fake_x.stats["requests"] == before
    row = account_row(engine, account)
    assert not row.baseline_done and row.next_poll_at > utcnow() + timedelta(minutes=50)
    fake_x.likes[PJOTR].insert(0, tweet(3, LUMEN))  # liked while flattring was off
    with engine.begin() as conn:
        identities.set_flattr_enabled(conn, identity.linked_user_id, identity.id, True)
    assert polling.poll_account(engine, poller, account).status == "baseline"
