"""Bluesky: Jetstream likes of linked accounts become flattrs and their deletion retracts them
(through the inbox, the queue and the ledger), a restart resumes from the stored cursor without
counting anything twice, and an account is linked by a code in its profile."""

from __future__ import annotations

import asyncio
import html
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from base.config import Settings, with_overrides
from base.tables.bluesky import bluesky_likes
from connectors import bluesky, jetstream
from flattr_hub.cli import main
from hub.app import create_app
from ledger import accounts, identities
from ledger.schema import flattrs, things
from ledger.schema import identities as identities_table
from pipeline import inbox
from tests.fakes.dns_server import FakeDNS
from tests.fakes.jetstream import FakeJetstream, did, like, post_uri, tid, unlike
from tests.test_discord_spool import outage
from tests.web_helpers import post_form, sign_up
from workers import jobs

pytest_plugins = ["tests.hub_fixtures"]

ALICE, BOB, CAROL = did(1), did(2), did(3)  # alice and bob are members, carol is not


@pytest.fixture
def stream() -> Iterator[FakeJetstream]:
    with FakeJetstream() as server:
        yield server


@pytest.fixture
def bsky_config(hub_config: Settings, stream: FakeJetstream) -> Settings:
    hub_config = with_overrides(hub_config, {"connectors.bluesky": dict(
        enabled=True, jetstream_url=stream.url, flush_ms=20, cursor_seconds=0.05,
        reload_seconds=0.2, reconnect_seconds=0.05, replay_seconds=5)})
    return hub_config


def members(engine, config) -> dict[str, int]:
    made = {}
    with engine.begin() as conn:
        for name, who in (("alice", ALICE), ("bob", BOB)):
            uid = made[name] = accounts.create_user(conn, name)
            accounts.set_budget(conn, uid, 500, config.money)
            accounts.credit_funds(conn, uid, 2000, "test", f"test:{name}")
            identities.link(conn, uid, "bluesky", who, claim=True)
    return made


class Running:
    """The consumer running as a task of the test's event loop."""

    def __init__(self, engine, config, redis=None) -> None:
        self.stop = asyncio.Event()
        self.stored: list[Any] = []
        status = jetstream.Status(redis) if redis is not None else None
        self.task = asyncio.create_task(jetstream.run(engine, config, self.stop,
                                                      self.stored.extend, status))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


async def until(check, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


def inbox_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(inbox.inbox)).scalar_one()


def cursor(engine) -> int | None:
    with engine.connect() as conn:
        return bluesky.load_cursor(conn)


# --- normalisation ---------------------------------------------------------------------------

def test_a_like_of_a_post_is_parsed_and_everything_else_skipped() -> None:
    message = like(ALICE, tid(7), post_uri(BOB, 1), 1_764_590_000_000_000, 7)
    op = bluesky.parse_commit(message)
    assert (op.did, op.rkey, op.operation, op.subject_uri) == (
        ALICE, tid(7), "create", post_uri(BOB, 1))
    made = bluesky.event_of(op, op.subject_uri)
    assert (made.kind, made.actor_id, made.owner_id, made.content_id) == (
        "like", ALICE, BOB, post_uri(BOB, 1))
    assert made.url == f"https://bsky.app/profile/{BOB}/post/{tid(1)}"
    assert made.event_id == bluesky.event_of(bluesky.parse_commit(message), op.subject_uri
                                             ).event_id  # deterministic
    feed = dict(message, commit=dict(message["commit"], record={"subject": {
        "uri": f"at://{BOB}/app.bsky.feed.generator/x"}}))
    assert bluesky.parse_commit(feed) is None
    assert bluesky.parse_commit({"did": ALICE, "time_us": 1, "kind": "identity"}) is None
    assert bluesky.parse_commit(dict(message, commit=dict(
        message["commit"], collection="app.bsky.feed.post"))) is None


@pytest.mark.parametrize("change", [
    {"did": "alice"}, {"did": "did:plc:" + "a" * 300}, {"time_us": "soon"},
    {"time_us": True}, {"commit": {"rkey": "../x"}}, {"commit": {"rev": "nope"}},
    {"commit": {"cid": "<script>"}}])
def test_malformed_likes_are_refused(change) -> None:
    message = like(ALICE, tid(7), post_uri(BOB, 1), 1_764_590_000_000_000, 7)
    for key, value in change.items():
        message[key] = dict(message[key], **value) if isinstance(value, dict) else value
    with pytest.raises(ValueError):
        bluesky.parse_commit(message)


def test_a_delete_retracts_the_remembered_like_and_replays_are_duplicates(
        engine, hub_config, worker_context) -> None:
    made = members(engine, hub_config)
    start = 1_764_590_000_000_000
    ops = [bluesky.parse_commit(m) for m in (
        like(ALICE, tid(1), post_uri(BOB, 1), start, 1),
        unlike(CAROL, tid(2), start + 1, 2),  # nothing remembered: nothing happens
        like(ALICE, tid(3), post_uri(BOB, 2), start + 2, 3),
        unlike(ALICE, tid(3), start + 3, 4))]  # liked and unliked in one batch
    with engine.begin() as conn:
        first = bluesky.store(conn, ops, start + 3)
    assert [e.kind for e in first] == ["like", "like", "unlike"]
    with engine.begin() as conn:
        assert [r.rkey for r in bluesky.remembered(conn, ALICE)] == [tid(1)]
        assert bluesky.load_cursor(conn) == start + 3
        again = bluesky.store(conn, ops, start)  # a replay: the cursor never goes back
        assert bluesky.load_cursor(conn) == start + 3
    assert [e.event_id for e in again] == [e.event_id for e in first]
    assert jobs.drain()["duplicate"] == 3
    with engine.connect() as conn:  # the like undone in the same batch never became a flattr
        assert conn.execute(select(things.c.content_id).join(
            flattrs, flattrs.c.thing_id == things.c.id)).scalars().all() == [post_uri(BOB, 1)]
    with engine.begin() as conn:
        bluesky.store(conn, [bluesky.parse_commit(unlike(ALICE, tid(1), start + 9, 9))], None)
        assert bluesky.remembered(conn, ALICE) == []
    assert jobs.drain() == {"unliked": 1, "rows": 1}
    with engine.connect() as conn:
        rows = conn.execute(select(flattrs.c.giver_id, flattrs.c.retracted_at)).all()
    # the like undone in its own batch never became a flattr; the other one is retracted
    assert [(r.giver_id, r.retracted_at is not None) for r in rows] == [(made["alice"], True)]


# --- the consumer against a fake Jetstream ---------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
async def test_like_flattrs_and_unlike_retracts_end_to_end(
        engine, bsky_config, stream, worker_context, redis, compress) -> None:
    bsky_config = with_overrides(bsky_config, {"connectors.bluesky.compress": compress})
    made = members(engine, bsky_config)
    running = Running(engine, bsky_config, redis)
    await until(lambda: stream.connected() == 1)
    query = stream.queries[0]
    assert query["wantedCollections"] == ["app.bsky.feed.like"]
    assert query["requireHello"] == ["true"]
    assert query.get("compress") == (["true"] if compress else None)
    assert stream.options[0]["wantedDids"] == sorted([ALICE, BOB])
    stream.publish(like(ALICE, tid(10), post_uri(BOB, 1), stream.now(), 10),
                   like(CAROL, tid(11), post_uri(BOB, 1), stream.now(), 11))
    await until(lambda: inbox_count(engine) == 1)
    assert (await asyncio.to_thread(jobs.drain))["flattred"] == 1
    with engine.connect() as conn:
        thing = conn.execute(select(things)).one()
    assert thing.url == f"https://bsky.app/profile/{BOB}/post/{tid(1)}"
    stream.publish(unlike(ALICE, tid(10), stream.now(), 12))
    await until(lambda: inbox_count(engine) == 1)  # the like was drained
    assert (await asyncio.to_thread(jobs.drain))["unliked"] == 1
    status = {k.decode(): v.decode() for k, v in redis.hgetall(jetstream.STATUS_KEY).items()}
    assert status["connected"] == "1" and float(status["lag_seconds"]) >= 0
    await running.close()
    assert redis.hget(jetstream.STATUS_KEY, "connected") == b"0"
    with engine.connect() as conn:
        [flattr] = conn.execute(select(flattrs)).all()
    assert flattr.giver_id == made["alice"] and flattr.retracted_at is not None


async def test_a_restart_resumes_from_the_cursor_without_counting_twice(
        engine, bsky_config, stream, worker_context) -> None:
    members(engine, bsky_config)
    running = Running(engine, bsky_config)
    await until(lambda: stream.connected() == 1)
    first = [like(ALICE, tid(n), post_uri(BOB, n), stream.now(), n) for n in range(1, 4)]
    stream.publish(*first)
    await until(lambda: cursor(engine) == first[-1]["time_us"])
    await running.close()
    later = [like(ALICE, tid(n), post_uri(BOB, n), stream.now(), n) for n in range(4, 6)]
    stream.publish(*later, unlike(ALICE, tid(1), stream.now(), 6))
    running = Running(engine, bsky_config)
    await until(lambda: cursor(engine) == stream.history[-1]["time_us"])
    await running.close()
    resumed = int(stream.queries[1]["cursor"][0])
    assert resumed == first[-1]["time_us"] - 5_000_000  # replay_seconds before
    assert stream.sent >= 3 + 3 + 3  # the first three were sent again
    assert (await asyncio.to_thread(jobs.drain))["duplicate"] == 3
    with engine.connect() as conn:
        rows = conn.execute(select(things.c.content_id, flattrs.c.retracted_at).join(
            things, things.c.id == flattrs.c.thing_id)).all()
    # the like of post 1 was undone before the worker recorded it: it never became a flattr
    assert sorted((r.content_id, r.retracted_at) for r in rows) == [
        (post_uri(BOB, n), None) for n in range(2, 6)]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(bluesky_likes)).scalar_one() == 4


async def test_beyond_max_wanted_dids_every_like_comes_and_is_filtered_here(
        engine, bsky_config, stream, worker_context) -> None:
    bsky_config = with_overrides(bsky_config, {"connectors.bluesky.max_wanted_dids": 1})
    members(engine, bsky_config)
    running = Running(engine, bsky_config)
    await until(lambda: stream.connected() == 1)
    assert "wantedDids" not in stream.options[0]
    stream.publish(*[like(did(n), tid(n), post_uri(BOB, n), stream.now(), n)
                     for n in range(3, 50)], like(ALICE, tid(1), post_uri(BOB, 1),
                                                  stream.now(), 1))
    await until(lambda: cursor(engine) == stream.history[-1]["time_us"])
    await running.close()
    assert inbox_count(engine) == 1


async def test_a_new_link_updates_the_filter_without_reconnecting(
        engine, bsky_config, stream, worker_context) -> None:
    running = Running(engine, bsky_config)
    await until(lambda: stream.connected() == 1)
    assert stream.options[0]["wantedDids"] == []  # nobody linked yet
    members(engine, bsky_config)
    await until(lambda: len(stream.options) == 2)
    assert stream.options[1]["wantedDids"] == sorted([ALICE, BOB])
    stream.publish(like(BOB, tid(1), post_uri(ALICE, 1), stream.now(), 1))
    await until(lambda: inbox_count(engine) == 1)
    await running.close()
    assert len(stream.queries) == 1


async def test_the_consumer_reconnects_after_the_server_drops_it(
        engine, bsky_config, stream, worker_context) -> None:
    members(engine, bsky_config)
    running = Running(engine, bsky_config)
    await until(lambda: stream.connected() == 1)
    stream.publish(like(ALICE, tid(1), post_uri(BOB, 1), stream.now(), 1))
    await until(lambda: inbox_count(engine) == 1)
    stream.drop_connections()
    await until(lambda: len(stream.queries) == 2 and stream.connected() == 1)
    stream.publish(like(ALICE, tid(2), post_uri(BOB, 2), stream.now(), 2))
    await until(lambda: inbox_count(engine) >= 2)
    await running.close()
    assert (await asyncio.to_thread(jobs.drain))["flattred"] == 2


async def test_while_the_database_is_down_nothing_is_lost(
        engine, bsky_config, stream, worker_context, db_url, tmp_path) -> None:
    bsky_config = with_overrides(bsky_config, {"connectors.bluesky.replay_seconds": 600})
    members(engine, bsky_config)
    running = Running(engine, bsky_config)
    await until(lambda: stream.connected() == 1)
    stream.publish(like(ALICE, tid(1), post_uri(BOB, 1), stream.now(), 1))
    await until(lambda: inbox_count(engine) == 1)
    await running.close()
    async with outage(db_url, tmp_path) as (down, restore):
        running = Running(down, bsky_config)
        stream.publish(like(ALICE, tid(2), post_uri(BOB, 2), stream.now(), 2))
        await asyncio.sleep(0.5)  # down for a while: the consumer keeps trying
        assert stream.connected() == 0 and not running.task.done()
        await restore()
        await until(lambda: cursor(engine) == stream.history[-1]["time_us"])
        await running.close()
    assert inbox_count(engine) == 3  # the first like came again: a duplicate the ledger skips
    assert (await asyncio.to_thread(jobs.drain))["flattred"] == 2


# --- linking by a code in the profile --------------------------------------------------------

class AppView:
    """A fake public AppView: `app.bsky.actor.getProfile` from a dict of profiles."""

    def __init__(self) -> None:
        self.profiles: dict[str, dict[str, Any]] = {}

    async def get_profile(self, request: web.Request) -> web.Response:
        found = self.profiles.get(request.query.get("actor", ""))
        if found is None:
            return web.json_response({"error": "InvalidRequest",
                                      "message": "Profile not found"}, status=400)
        return web.json_response(found)


@pytest.fixture
async def appview(aiohttp_server) -> AppView:
    state = AppView()
    app = web.Application()
    app.router.add_get("/xrpc/app.bsky.actor.getProfile", state.get_profile)
    state.url = str((await aiohttp_server(app)).make_url("/"))
    return state


@pytest.fixture
def handles() -> Iterator[FakeDNS]:
    with FakeDNS({("_atproto.alice.example", "TXT"): [f"did={ALICE}"]}) as server:
        yield server


@pytest.fixture
async def web_client(aiohttp_client, bsky_config, engine, redis, appview, handles):
    bsky_config = with_overrides(bsky_config, {
        "connectors.bluesky.appview_url": appview.url,
        "web": dict(site_claim_nameservers=["127.0.0.1"], site_claim_dns_port=handles.port,
                    site_claim_allow_private=True, site_claim_timeout_seconds=2)})
    return await aiohttp_client(create_app(bsky_config, engine, redis))


def linked_to(engine, who: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(select(identities_table.c.linked_user_id).where(
            identities_table.c.platform == "bluesky",
            identities_table.c.platform_user_id == who)).scalar()


async def test_an_account_is_linked_once_its_code_is_in_the_profile(
        web_client, engine, appview) -> None:
    await sign_up(web_client, "ana")
    reply = await post_form(web_client, "/bluesky", {"account": "@Alice.Example"},
                            token_from="/bluesky")
    assert reply.status == 303, await reply.text()
    page = html.unescape(await (await web_client.get("/bluesky")).text())
    code = re.search(r"<code>(flattr-[A-Za-z0-9_-]+)</code>", page).group(1)
    assert ALICE in page
    appview.profiles[ALICE] = {"did": ALICE, "handle": "alice.example",
                               "description": "I post things"}
    reply = await post_form(web_client, "/bluesky/verify", {"did": ALICE},
                            token_from="/bluesky")
    assert reply.status == 400 and "is not in the profile" in await reply.text()
    assert linked_to(engine, ALICE) is None
    appview.profiles[ALICE]["description"] = f"I post things\n{code}"
    reply = await post_form(web_client, "/bluesky/verify", {"did": ALICE},
                            token_from="/bluesky")
    assert reply.status == 200 and "is linked" in await reply.text()
    with engine.connect() as conn:
        assert linked_to(engine, ALICE) == accounts.user_id(conn, "ana")
        assert bluesky.linked_dids(conn) == {ALICE}


async def test_linking_refuses_bad_input_and_needs_csrf(web_client, engine, appview) -> None:
    await sign_up(web_client, "ana")
    for account in ("not a handle", "did:plc:short", "nobody.example"):
        reply = await post_form(web_client, "/bluesky", {"account": account},
                                token_from="/bluesky")
        assert reply.status == 400, account
    reply = await web_client.post("/bluesky", data={"account": "alice.example"},
                                  allow_redirects=False)
    assert reply.status == 403
    reply = await post_form(web_client, "/bluesky/verify", {"did": BOB}, token_from="/bluesky")
    assert reply.status == 404
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(
            identities_table).where(identities_table.c.platform == "bluesky")).scalar_one() == 0


async def test_the_pages_are_off_unless_bluesky_is_enabled(aiohttp_client, bsky_config, engine,
                                                           redis) -> None:
    client = await aiohttp_client(create_app(
        with_overrides(bsky_config, {"connectors.bluesky.enabled": False}), engine, redis))
    await sign_up(client, "ana")
    assert (await client.get("/bluesky")).status == 404


# --- the commands ----------------------------------------------------------------------------

@pytest.fixture
def cli_env(db_url, tmp_path, monkeypatch, stream, redis_url) -> dict[str, str]:
    for name in [n for n in os.environ if n.startswith("FLATTR_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    values = {"FLATTR_DATABASE_URL": db_url, "FLATTR_DATA_DIR": str(tmp_path / "var"),
              "FLATTR_REDIS_URL": redis_url, "FLATTR_CONNECTORS__BLUESKY__ENABLED": "true",
              "FLATTR_CONNECTORS__BLUESKY__JETSTREAM_URL": stream.url,
              "FLATTR_CONNECTORS__BLUESKY__FLUSH_MS": "20"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_an_operator_links_an_account_by_its_did(cli_env, engine, capsys, monkeypatch) -> None:
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "ana")
    assert main(["bluesky", "link", "ana", ALICE]) == 0
    assert f"linked Bluesky account {ALICE}" in capsys.readouterr().out
    assert linked_to(engine, ALICE) == uid
    assert main(["bluesky", "link", "nobody", BOB]) == 2
    assert main(["bluesky", "link", "ana", "not a did"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 2 and linked_to(engine, BOB) is None
    monkeypatch.setenv("FLATTR_CONNECTORS__BLUESKY__ENABLED", "false")
    assert main(["bluesky-stream"]) == 2
    assert "connectors.bluesky.enabled is false" in capsys.readouterr().err


def test_the_stream_command_stops_cleanly_on_sigterm(cli_env, engine, stream, redis,
                                                     hub_config) -> None:
    members(engine, hub_config)
    process = subprocess.Popen([sys.executable, "-m", "flattr_hub.cli", "bluesky-stream"],
                               env={**os.environ, **cli_env}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(1500):
            if stream.connected() or process.poll() is not None:
                break
            time.sleep(0.02)
        assert stream.connected() == 1
        stream.publish(like(ALICE, tid(1), post_uri(BOB, 1), stream.now(), 1))
        for _ in range(500):
            if inbox_count(engine):
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out
    assert "Bluesky stream stopped" in out
    assert inbox_count(engine) == 1
    assert cursor(engine) == stream.history[-1]["time_us"]
    assert redis.hget(jetstream.STATUS_KEY, "connected") == b"0"
