"""Outbound webhooks: deliveries received by a local aiohttp server, signatures verified with
`standardwebhooks`, the retry schedule driven by an injected clock, endpoints disabled on 410
or after days of failures, resends, event routing, and the `outbound` queue."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import threading
from datetime import datetime, timedelta

import pytest
from aiohttp import web
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from prometheus_client import REGISTRY
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry as RedisRetry
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from base.config import with_overrides
from base.tables.outbound import outbound_attempts, outbound_deliveries, outbound_endpoints
from flattr_hub.cli import main
from ledger import accounts
from ledger.ingest import ingest
from ledger.schema import metadata
from ledger.settlement import settle
from ledger.sql import utcnow
from outbound import delivery, endpoints, events
from pipeline.queues import queue
from tests.fakes.webhook_receiver import Receiver
from tests.ledger_helpers import make_user, star
from workers import webhooks_out
from workers.worker import FlattrWorker

pytest_plugins = ["tests.hub_fixtures"]

T0 = datetime(2026, 11, 25, 12, 0, 0)


@pytest.fixture
def serve(aiohttp_server):
    async def start(receiver: Receiver) -> str:
        server = await aiohttp_server(receiver.app(), host="127.0.0.1")
        return str(server.make_url("/hook"))
    return start


@pytest.fixture
def serve_in_thread():
    """Like `serve`, on an event loop of its own in another thread, for tests that block the
    main thread (an RQ worker must run there)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners = []

    def start(receiver: Receiver) -> str:
        async def listen() -> str:
            runner = web.AppRunner(receiver.app())
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            return f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        return asyncio.run_coroutine_threadsafe(listen(), loop).result(10)

    yield start
    for runner in runners:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def config(config):
    """These tests' endpoints are local servers (or names that do not resolve): allow them.
    test_outbound_web.py checks that the default refuses them."""
    return with_overrides(config, {"outbound.allow_private": True})


def endpoint(engine, config, url, events=("flattr.received",), *, name="cy",
             partner=False):
    """(user id, endpoint id, secret) of a new endpoint of a new user `name`."""
    with engine.begin() as conn:
        uid = accounts.create_user(conn, name)
        endpoint_id, secret = endpoints.add_endpoint(conn, config, uid, url, events,
                                                    partner=partner)
    return uid, endpoint_id, secret


def emit(engine, owner, event_type="flattr.received", data=None, now=T0, key=None):
    with engine.begin() as conn:
        return events.emit(conn, event_type, data or {"flattr_id": 1}, owner, key=key, now=now)


def delivery_row(engine, delivery_id):
    with engine.connect() as conn:
        return conn.execute(select(outbound_deliveries)
                            .where(outbound_deliveries.c.id == delivery_id)).one()


def endpoint_row(engine, endpoint_id):
    with engine.connect() as conn:
        return conn.execute(select(outbound_endpoints)
                            .where(outbound_endpoints.c.id == endpoint_id)).one()


def attempts_counted(result: str) -> float:
    """The `flattr_outbound_attempts_total` metric of this process."""
    return REGISTRY.get_sample_value("flattr_outbound_attempts_total", {"result": result}) or 0.0


async def attempt(engine, config, delivery_id, now):
    """One attempt, off the event loop (the local server answers on it)."""
    return await asyncio.to_thread(delivery.attempt, engine, config, delivery_id, now=now)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


async def test_retried_on_schedule_until_accepted_and_every_signature_verifies(
        engine, config, serve):
    receiver = Receiver(500, 503, 502, 204)
    uid, endpoint_id, secret = endpoint(engine, config, await serve(receiver))
    [delivery_id] = emit(engine, uid, data={"flattr_id": 7, "giver": "ana"})
    before = {result: attempts_counted(result) for result in ("retry", "delivered")}

    now, times = T0, []
    while True:
        result = await attempt(engine, config, delivery_id, now)
        times.append(now)
        if result.retry_at is None:
            break
        early = await attempt(engine, config, delivery_id, result.retry_at - timedelta(seconds=1))
        assert early.state == "not_due"
        now = result.retry_at

    assert result == delivery.Attempt("delivered", 204)
    assert [b - a for a, b in itertools.pairwise(times)] == [
        timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)]
    assert len(receiver.requests) == 4
    ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    assert ids == {delivery_row(engine, delivery_id).webhook_id}
    for headers, body in receiver.requests:
        message = Webhook(secret).verify(body, headers)
        assert message["type"] == "flattr.received"
        assert message["data"] == {"flattr_id": 7, "giver": "ana"}
        with pytest.raises(Exception, match="signature"):
            Webhook(endpoints.new_secret()).verify(body, headers)
    row = delivery_row(engine, delivery_id)
    assert (row.state, row.attempts, row.last_status, row.last_error, row.next_attempt_at,
            row.delivered_at) == ("delivered", 4, 204, None, None, now)
    with engine.connect() as conn:
        statuses = conn.execute(select(outbound_attempts.c.status)
                                .order_by(outbound_attempts.c.id)).scalars().all()
    assert statuses == [500, 503, 502, 204]
    assert endpoint_row(engine, endpoint_id).failing_since is None
    assert {result: attempts_counted(result) - before[result] for result in before} == {
        "retry": 3, "delivered": 1}


async def test_a_delivery_fails_after_the_seventh_attempt(engine, config):
    uid, endpoint_id, _ = endpoint(engine, config, closed_port_url())
    [delivery_id] = emit(engine, uid)
    now, gaps = T0, []
    for _ in range(7):
        result = await attempt(engine, config, delivery_id, now)
        if result.retry_at is not None:
            gaps.append(result.retry_at - now)
            now = result.retry_at
    assert result == delivery.Attempt("failed", None)
    assert gaps == list(delivery.RETRY_SCHEDULE[1:])
    row = delivery_row(engine, delivery_id)
    assert (row.state, row.attempts, row.last_status, row.last_error) == (
        "failed", 7, None, "the endpoint could not be reached")
    assert (await attempt(engine, config, delivery_id, now + timedelta(days=1))).state == \
        "not_due"
    ep = endpoint_row(engine, endpoint_id)
    assert (ep.enabled, ep.failing_since) == (True, T0)


async def test_410_disables_the_endpoint_and_fails_what_is_pending(engine, config, serve):
    receiver = Receiver(410, 200)
    uid, endpoint_id, _ = endpoint(engine, config, await serve(receiver))
    first, second = emit(engine, uid) + emit(engine, uid)

    assert await attempt(engine, config, first, T0) == delivery.Attempt("failed", 410)
    ep = endpoint_row(engine, endpoint_id)
    assert (ep.enabled, ep.disabled_reason) == (False, "the endpoint answered 410 Gone")
    assert [delivery_row(engine, i).state for i in (first, second)] == ["failed", "failed"]
    assert delivery_row(engine, second).last_error == \
        "endpoint disabled: the endpoint answered 410 Gone"
    assert emit(engine, uid) == []
    with pytest.raises(endpoints.OutboundError, match="disabled"):
        delivery.resend(engine, second)

    with engine.begin() as conn:
        endpoints.enable_endpoint(conn, endpoint_id)
    assert delivery.resend(engine, second, now=T0) is False  # no queue given: the sweep sends
    assert await attempt(engine, config, second, T0) == delivery.Attempt("delivered", 200)
    assert len(receiver.requests) == 2


async def test_an_endpoint_failing_for_days_is_disabled(engine, config, serve):
    config = with_overrides(config, {"outbound.disable_after_days": 2})
    receiver = Receiver(500)
    uid, endpoint_id, _ = endpoint(engine, config, await serve(receiver))
    for day, state in ((0, "pending"), (1, "pending"), (2, "failed")):
        now = T0 + timedelta(days=day)
        [delivery_id] = emit(engine, uid, now=now)
        assert (await attempt(engine, config, delivery_id, now)).state == state
    ep = endpoint_row(engine, endpoint_id)
    assert ep.enabled is False
    assert ep.disabled_reason == "every attempt failed since 2026-11-25T12:00:00Z"
    with engine.connect() as conn:
        states = conn.execute(select(outbound_deliveries.c.state)).scalars().all()
    assert states == ["failed"] * 3


async def test_resend_sends_the_same_message_again(engine, config, serve):
    receiver = Receiver(200)
    uid, _, secret = endpoint(engine, config, await serve(receiver))
    [delivery_id] = emit(engine, uid)
    assert (await attempt(engine, config, delivery_id, T0)).state == "delivered"
    assert (await attempt(engine, config, delivery_id, T0)).state == "not_due"

    delivery.resend(engine, delivery_id, now=T0 + timedelta(hours=1))
    row = delivery_row(engine, delivery_id)
    assert (row.state, row.attempts, row.delivered_at) == ("pending", 0, None)
    assert (await attempt(engine, config, delivery_id, T0 + timedelta(hours=1))).state == \
        "delivered"
    [(h1, b1), (h2, b2)] = receiver.requests
    assert h1["webhook-id"] == h2["webhook-id"] and b1 == b2
    assert Webhook(secret).verify(b2, h2)["type"] == "flattr.received"
    with pytest.raises(endpoints.OutboundError, match="no delivery 999"):
        delivery.resend(engine, 999)


def test_events_go_to_subscribed_enabled_endpoints_once(engine, config):
    ana, ana_flattrs, _ = endpoint(engine, config, "https://ana.example/hook", name="ana")
    with engine.begin() as conn:
        ana_settlements, _ = endpoints.add_endpoint(conn, config, ana, "https://ana.example/s",
                                                   ["settlement.completed"])
    bo, _, _ = endpoint(engine, config, "https://bo.example/hook", name="bo")
    partner_user, partner, _ = endpoint(engine, config, "https://partner.example/hook",
                                        ["pledge.created"], name="partner", partner=True)

    ids = emit(engine, ana, key="flattr:1")
    assert [delivery_row(engine, i).endpoint_id for i in ids] == [ana_flattrs]
    assert emit(engine, ana, key="flattr:1") == []
    [settled] = emit(engine, ana, "settlement.completed", {"month": "2026-10"})
    assert delivery_row(engine, settled).endpoint_id == ana_settlements
    [pledge] = emit(engine, None, "pledge.created")
    assert delivery_row(engine, pledge).endpoint_id == partner
    assert emit(engine, bo, "pledge.created") == []
    assert emit(engine, partner_user, "pledge.created") == []  # partners get owner-less events
    with pytest.raises(ValueError, match="unknown event type"):
        emit(engine, ana, "flattr.invented")


def test_endpoint_registration_checks_url_and_event_types(engine, config):
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "ana")
        with pytest.raises(endpoints.OutboundError, match="http:// or https://"):
            endpoints.add_endpoint(conn, config, uid, "ftp://example.org/x", ["flattr.received"])
        with pytest.raises(endpoints.OutboundError, match=r"unknown event type flattr\.lost"):
            endpoints.add_endpoint(conn, config, uid, "https://example.org", ["flattr.lost"])
        endpoint_id, secret = endpoints.add_endpoint(
            conn, config, uid, "https://example.org", ["settlement.completed", "flattr.received"])
        [listed] = endpoints.list_endpoints(conn, uid)
    assert secret.startswith("whsec_") and len(Webhook(secret)._whsecret) == 32
    assert (listed.id, listed.user, listed.event_types, listed.enabled) == (
        endpoint_id, "ana", ("flattr.received", "settlement.completed"), True)


def test_ingested_flattrs_pledges_and_settlement_are_emitted(engine, config):
    make_user(engine, config, "ana", budget=500, funds=2000, github="1", claim=False)
    bo = make_user(engine, config, "bo", budget=200, funds=300, github="2")
    config = with_overrides(config, {"hub.base_url": "https://hub.example"})
    with engine.begin() as conn:
        early = [star("1", "r0", "2", "2026-06-02T10:00:00")]
        assert events.emit_for_ingest(conn, config, early, ingest(conn, early)) == []
        bo_endpoint, _ = endpoints.add_endpoint(
            conn, config, bo, "https://bo.example", ["flattr.received", "settlement.completed"])
        partner_user = accounts.create_user(conn, "partner")
        partner, _ = endpoints.add_endpoint(conn, config, partner_user, "https://partner.example",
                                           ["pledge.created"], partner=True)
        batch = [star("1", "r1", "2", "2026-06-03T10:00:00"),
                 star("1", "r3", "3", "2026-06-05T10:00:00"),
                 star("9", "r4", "2", "2026-06-05T10:00:00")]  # unknown actor: no flattr
        result = ingest(conn, batch)
        ids = events.emit_for_ingest(conn, config, batch, result)
        assert events.emit_for_ingest(conn, config, batch, result) == []  # once per flattr
    received, pledged = (json.loads(delivery_row(engine, i).payload) for i in ids)
    assert delivery_row(engine, ids[0]).endpoint_id == bo_endpoint
    assert received["type"] == "flattr.received"
    assert (received["data"]["giver"], received["data"]["thing"]["content_id"],
            received["data"]["month"]) == ("ana", "r1", "2026-06")
    assert "claim_url" not in received["data"]
    assert delivery_row(engine, ids[1]).endpoint_id == partner
    assert pledged["type"] == "pledge.created"
    assert pledged["data"]["claim_url"] == "https://hub.example/claim/github/3"
    assert pledged["data"]["owner"]["platform_user_id"] == "3"

    settle(engine, "2026-06", config.money, now=datetime(2026, 7, 2))
    with engine.begin() as conn:
        [settled] = events.emit_settlement(conn, config, "2026-06")
        assert events.emit_settlement(conn, config, "2026-06") == []
    assert json.loads(delivery_row(engine, settled).payload)["data"] == {
        "month": "2026-06", "currency": "EUR", "flattrs": 2, "amount": 500, "fee": 50,
        "net": 450}


def test_the_outbound_queue_sends_and_schedules_the_retry(worker_context, engine, config, redis,
                                                          serve_in_thread):
    receiver = Receiver(500, 200)
    uid, _, _ = endpoint(engine, config, serve_in_thread(receiver))
    ids = emit(engine, uid, now=utcnow())
    assert delivery.enqueue(redis, ids) == 1

    worker = FlattrWorker([queue("outbound", redis)], connection=redis)
    assert worker.work(burst=True)
    [job_id] = ScheduledJobRegistry(queue=queue("outbound", redis)).get_job_ids()
    assert len(receiver.requests) == 1
    row = delivery_row(engine, ids[0])
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, 500)
    assert timedelta(seconds=3) < row.next_attempt_at - utcnow() <= timedelta(seconds=5)
    assert queue("outbound", redis).fetch_job(job_id).args == (ids[0],)

    # The scheduled job is lost (Redis restarted empty): the sweep queues the delivery again.
    redis.flushdb()
    assert webhooks_out.dispatch_due(now=utcnow() + timedelta(seconds=5)) == 0  # not stale yet
    assert webhooks_out.dispatch_due(now=utcnow() + timedelta(minutes=2)) == 1
    assert queue("outbound", redis).count == 1
    assert delivery.resend(engine, ids[0], redis) is True
    assert worker.work(burst=True)
    assert delivery_row(engine, ids[0]).state == "delivered"
    assert len(receiver.requests) == 2  # the second job found it delivered already


def test_a_job_queued_under_its_old_path_before_an_upgrade_still_sends(
        worker_context, engine, config, redis, serve_in_thread):
    """Deliveries were queued as `outbound.webhooks.deliver` before the jobs moved into
    workers/; such a job, left in Redis across an upgrade, still makes its attempt."""
    receiver = Receiver(200)
    uid, _, _ = endpoint(engine, config, serve_in_thread(receiver))
    ids = emit(engine, uid, now=utcnow())
    queue("outbound", redis).enqueue("outbound.webhooks.deliver", ids[0])
    assert FlattrWorker([queue("outbound", redis)], connection=redis).work(burst=True)
    assert delivery_row(engine, ids[0]).state == "delivered"
    assert len(receiver.requests) == 1


# --- The `flattr-hub webhooks` commands ---------------------------------------------------


@pytest.fixture
def cli(db_url, redis_url, tmp_path, monkeypatch, capsys):
    """Run `flattr-hub` in-process against the test database and Redis: (code, out, err)."""
    for name in list(os.environ):
        if name.startswith("FLATTR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLATTR_DATABASE_URL", db_url)
    monkeypatch.setenv("FLATTR_REDIS_URL", redis_url)
    monkeypatch.setenv("FLATTR_OUTBOUND__ALLOW_PRIVATE", "true")  # x.example does not resolve

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_webhooks_commands(cli, engine, redis):
    code, out, err = cli("user", "create", "ana")
    assert code == 0, err
    code, out, err = cli("webhooks", "add", "ana", "https://ana.example/hook",
                         "--events", "settlement.completed,flattr.received")
    assert code == 0, err
    [secret] = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("secret")]
    assert out.startswith("endpoint 1 of ana: https://ana.example/hook "
                          "(flattr.received, settlement.completed)")
    assert Webhook(secret)._whsecret

    code, out, _ = cli("webhooks", "list", "ana")
    assert (code, out) == (0, "1\thttps://ana.example/hook\tflattr.received,"
                              "settlement.completed\tuser\tenabled\n")
    code, out, _ = cli("webhooks", "list", "ana", "--json")
    assert json.loads(out)[0]["events"] == ["flattr.received", "settlement.completed"]
    assert secret not in out

    with engine.connect() as conn:
        uid = accounts.user_id(conn, "ana")
    [delivery_id] = emit(engine, uid)
    code, out, _ = cli("webhooks", "deliveries", "--endpoint", "1")
    assert code == 0
    assert out.split("\t")[:3] == [str(delivery_id), "1", "flattr.received"]
    assert out.rstrip("\n").split("\t")[4:] == ["pending", "0 attempts", f"next {T0.isoformat()}Z",
                                                "-"]
    assert cli("webhooks", "deliveries", "--endpoint", "2")[1] == ""
    [logged] = json.loads(cli("webhooks", "deliveries", "--json")[1])
    assert (logged["id"], logged["state"], logged["created_at"]) == (
        delivery_id, "pending", "2026-11-25T12:00:00Z")

    code, out, err = cli("webhooks", "resend", str(delivery_id))
    assert (code, out, err) == (0, f"delivery {delivery_id} will be sent again\n", "")
    assert queue("outbound", redis).count == 1

    with engine.begin() as conn:
        conn.execute(outbound_endpoints.update().values(enabled=False, disabled_reason="410"))
    code, _, err = cli("webhooks", "resend", str(delivery_id))
    assert (code, err) == (2, f"flattr-hub: error: the endpoint of delivery {delivery_id} is "
                              "disabled; enable it first\n")
    assert cli("webhooks", "enable", "1")[:2] == (0, "endpoint 1 enabled\n")
    assert cli("webhooks", "resend", str(delivery_id))[0] == 0
    assert cli("webhooks", "disable", "1")[:2] == (0, "endpoint 1 disabled\n")
    assert endpoint_row(engine, 1).disabled_reason == "disabled by an operator"
    assert delivery_row(engine, delivery_id).state == "failed"
    assert cli("webhooks", "delete", "1")[:2] == (0, "endpoint 1 deleted\n")
    assert cli("webhooks", "list", "ana")[1] == ""
    assert cli("webhooks", "deliveries")[1] == ""


def test_webhooks_add_refuses_private_targets_unless_allowed(cli, monkeypatch):
    monkeypatch.setenv("FLATTR_OUTBOUND__ALLOW_PRIVATE", "false")
    assert cli("user", "create", "ana")[0] == 0
    for url, why in (("http://127.0.0.1:8080/hook", "has a private"),
                     ("http://169.254.169.254/latest", "has a private"),
                     ("https://x.example/hook", "does not resolve")):
        code, out, err = cli("webhooks", "add", "ana", url, "--events", "flattr.received")
        assert (code, out) == (2, "")
        assert why in err and err.count("\n") == 1
    assert cli("webhooks", "list", "ana")[1] == ""
    monkeypatch.setenv("FLATTR_OUTBOUND__ALLOW_PRIVATE", "true")
    code, out, err = cli("webhooks", "add", "ana", "http://127.0.0.1:8080/hook", "--events",
                         "flattr.received")
    assert code == 0, err


@pytest.mark.parametrize(("argv", "message"), [
    (("webhooks", "add", "nobody", "https://x.example", "--events", "flattr.received"),
     "no user named nobody"),
    (("webhooks", "add", "ana", "x.example", "--events", "flattr.received"),
     "endpoint URL must be http:// or https:// with a host: 'x.example'"),
    (("webhooks", "add", "ana", "http://[::1/hook", "--events", "flattr.received"),
     "endpoint URL must be http:// or https:// with a host: 'http://[::1/hook'"),
    (("webhooks", "add", "ana", "https://x.example:99999/", "--events", "flattr.received"),
     "endpoint URL must be http:// or https:// with a host"),
    (("webhooks", "add", "ana", "https://x.example", "--events", "flattr.lost"),
     "unknown event type flattr.lost"),
    (("webhooks", "resend", "42"), "no delivery 42"),
    (("webhooks", "enable", "42"), "no endpoint 42"),
    (("webhooks", "add", "ana", "https://x.example", "--events", "pledge.created"),
     "pledge.created is sent to partner endpoints only"),
    (("webhooks", "disable", "42"), "no endpoint 42"),
    (("webhooks", "delete", "42"), "no endpoint 42"),
    (("webhooks",),
     "usage: flattr-hub webhooks add|list|enable|disable|delete|deliveries|resend ..."),
])
def test_webhooks_command_errors_are_one_line(cli, argv, message):
    assert cli("user", "create", "ana")[0] == 0
    code, out, err = cli(*argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err


def test_migration_0004_builds_the_declared_outbound_tables(engine):
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in differences if "outbound_" in str(d)] == []
    assert {"outbound_endpoints", "outbound_deliveries", "outbound_attempts"} <= set(
        metadata.tables)


def test_a_delivery_recorded_while_redis_is_down_is_sent_by_the_sweep(worker_context, engine,
                                                                       config, redis):
    uid, _, _ = endpoint(engine, config, "https://cy.example/hook")
    ids = emit(engine, uid, now=utcnow() - timedelta(minutes=5))
    down = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5,
                 retry=RedisRetry(NoBackoff(), 0))
    assert delivery.enqueue(down, ids) == 0
    assert delivery_row(engine, ids[0]).state == "pending"
    assert webhooks_out.dispatch_due() == 1
    [job] = queue("outbound", redis).get_jobs()
    assert (job.func_name, job.args) == ("workers.webhooks_out.deliver", (ids[0],))
