"""The hub over HTTP: verification, normalisation, durable acceptance and JSON errors."""

import json
import os
from pathlib import Path
from urllib.parse import urlencode

from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import func, select

from base.config import with_overrides
from hub.app import create_app
from hub.simulate import github_headers, github_star, standard_headers
from pipeline.inbox import inbox
from pipeline.queues import WAKE_FLAG
from tests.hub_helpers import GITHUB_SECRET, METRICS_AUTH, RELAY_SECRET

pytest_plugins = ["tests.hub_fixtures"]

FIXTURES = Path(__file__).resolve().parent / "fixtures"


async def eventually(check, seconds=2.0):
    """Wait for `check()` to hold: the queue is woken just after the answer."""
    import asyncio

    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    assert check()


def inbox_rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(inbox).order_by(inbox.c.id)).all()


async def test_signed_star_is_stored_then_answered_202_and_queued(hub_client, engine, redis):
    body = (FIXTURES / "github-star-created.json").read_bytes()
    response = await hub_client.post("/webhooks/github", data=body,
                                     headers=github_headers(GITHUB_SECRET, body, "star", "d-1"))
    assert response.status == 202
    assert await response.json() == {"accepted": 1}
    [row] = inbox_rows(engine)
    assert (row.platform, row.event_id, row.request_id) == ("github", "d-1", "d-1")
    assert json.loads(row.event)["content_id"] == "513384129"
    await eventually(lambda: redis.llen("rq:queue:events") == 1)
    assert redis.get(WAKE_FLAG) == b"1"


async def test_one_drain_job_waits_however_many_events_arrive(hub_client, engine, redis):
    for n in range(5):
        body, headers = github_star(GITHUB_SECRET, sender=1, repo=100 + n, owner=2)
        assert (await hub_client.post("/webhooks/github", data=body, headers=headers)).status == 202
        await eventually(lambda: redis.llen("rq:queue:events") == 1)
    assert len(inbox_rows(engine)) == 5
    assert redis.llen("rq:queue:events") == 1


async def test_relay_event_is_accepted(hub_client, engine):
    body = (FIXTURES / "relay-soundcloud-like.json").read_bytes()
    response = await hub_client.post("/webhooks/relay", data=body,
                                     headers=standard_headers(RELAY_SECRET, body, "msg_1"))
    assert response.status == 202
    [row] = inbox_rows(engine)
    assert (row.platform, row.event_id) == ("soundcloud", "msg_1")


async def test_ping_is_answered_200_and_stores_nothing(hub_client, engine, redis):
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 7}'
    response = await hub_client.post("/webhooks/github", data=body,
                                     headers=github_headers(GITHUB_SECRET, body, "ping", "p-1"))
    assert response.status == 200
    assert await response.json() == {"accepted": 0}
    assert inbox_rows(engine) == []
    assert redis.llen("rq:queue:events") == 0


async def test_forged_unsigned_and_stale_requests_get_401_and_change_nothing(hub_client, engine):
    body, headers = github_star(GITHUB_SECRET, sender=1, repo=5, owner=2)
    forged = dict(headers, **{"X-Hub-Signature-256": "sha256=" + "0" * 64})
    unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    relay_body = (FIXTURES / "relay-soundcloud-like.json").read_bytes()
    stale = standard_headers(RELAY_SECRET, relay_body, "msg_2")
    stale["webhook-timestamp"] = str(int(stale["webhook-timestamp"]) - 3600)
    for path, data, sent in (("github", body, forged), ("github", body, unsigned),
                             ("github", body + b" ", headers), ("relay", relay_body, stale)):
        response = await hub_client.post(f"/webhooks/{path}", data=data, headers=sent)
        assert response.status == 401
        reply = await response.json()
        assert reply["error"] == "invalid_signature"
        assert reply["error_description"]
        assert GITHUB_SECRET not in reply["error_description"]
    assert inbox_rows(engine) == []


async def test_signed_but_malformed_payload_gets_400(hub_client, engine):
    for body in (b"{not json", b'{"action": "created"}'):
        headers = github_headers(GITHUB_SECRET, body, "star", "d-9")
        response = await hub_client.post("/webhooks/github", data=body, headers=headers)
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"
    assert inbox_rows(engine) == []


async def test_oversized_body_gets_413_json(hub_client, engine):
    body = b'{"pad": "' + b"x" * 5000 + b'"}'
    response = await hub_client.post("/webhooks/github", data=body,
                                     headers=github_headers(GITHUB_SECRET, body, "star", "big"))
    assert response.status == 413
    assert (await response.json())["error"] == "payload_too_large"
    assert inbox_rows(engine) == []


async def test_unknown_or_switched_off_connector_gets_404_json(
        aiohttp_client, hub_config, engine, redis):
    hub_config = with_overrides(hub_config, {"connectors.relay.secret": ""})
    client = await aiohttp_client(create_app(hub_config, engine, redis))
    for path in ("/webhooks/relay", "/webhooks/nosuch", "/webhooks/UPPER", "/nowhere"):
        response = await client.post(path, data=b"{}")
        assert response.status == 404, path
        assert (await response.json())["error"] == "not_found"


async def test_wrong_method_gets_405_json(hub_client):
    response = await hub_client.get("/webhooks/github")
    assert response.status == 405
    assert (await response.json())["error"] == "method_not_allowed"


async def test_healthz_reports_database_queue_and_pending(hub_client):
    body, headers = github_star(GITHUB_SECRET, sender=1, repo=5, owner=2)
    await hub_client.post("/webhooks/github", data=body, headers=headers)
    response = await hub_client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "queue": "ok",
                                     "pending": 1, "quarantined": 0, "streams": {},
                                     "process": os.getpid()}


async def test_events_are_accepted_while_redis_is_down(aiohttp_client, hub_config, engine):
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    client = await aiohttp_client(create_app(hub_config, engine, dead))
    body, headers = github_star(GITHUB_SECRET, sender=1, repo=5, owner=2)
    response = await client.post("/webhooks/github", data=body, headers=headers)
    assert response.status == 202
    assert len(inbox_rows(engine)) == 1
    health = await (await client.get("/healthz")).json()
    assert (health["status"], health["queue"]) == ("degraded", "down")


async def test_concurrent_requests_share_commits(aiohttp_client, hub_config, engine, redis,
                                                 monkeypatch):
    import asyncio

    from pipeline import inbox as inbox_module

    groups = []
    original = inbox_module.append

    def counting_append(conn, entries):
        groups.append(len(entries))
        original(conn, entries)

    monkeypatch.setattr(inbox_module, "append", counting_append)
    hub_config = with_overrides(hub_config, {"hub.inbox_wait_ms": 20})
    client = await aiohttp_client(create_app(hub_config, engine, redis))
    deliveries = [github_star(GITHUB_SECRET, sender=1, repo=n, owner=2) for n in range(40)]
    responses = await asyncio.gather(*(client.post("/webhooks/github", data=body, headers=h)
                                       for body, h in deliveries))
    assert [r.status for r in responses] == [202] * 40
    assert sum(groups) == 40
    assert len(groups) < 40
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(inbox)).scalar() == 40


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when it is absent."""
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
                     if labels else "")
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


async def test_metrics_count_a_signed_and_a_forged_webhook_differently(hub_client):
    before = await (await hub_client.get("/metrics", headers=METRICS_AUTH)).text()
    body, headers = github_star(GITHUB_SECRET, sender=1, repo=100, owner=2)
    assert (await hub_client.post("/webhooks/github", data=body, headers=headers)).status == 202
    forged, forged_headers = github_star("not the secret", sender=1, repo=101, owner=2)
    assert (await hub_client.post("/webhooks/github", data=forged,
                                  headers=forged_headers)).status == 401
    after = await (await hub_client.get("/metrics", headers=METRICS_AUTH)).text()
    grew = {key: metric(after, *key[:1], **dict(key[1:])) - metric(before, *key[:1],
                                                                    **dict(key[1:]))
            for key in [("flattr_webhooks_received_total", ("platform", "github")),
                        ("flattr_webhooks_verified_total", ("platform", "github")),
                        ("flattr_webhooks_rejected_total", ("platform", "github"),
                         ("reason", "signature"))]}
    assert list(grew.values()) == [2.0, 1.0, 1.0]
    assert "invalid" not in after and GITHUB_SECRET not in after


def form_encoded(secret: str, payload: bytes, delivery: str) -> tuple[bytes, dict[str, str]]:
    """A delivery as GitHub sends it with its default content type: `payload=<JSON>`, signed
    over the raw form body."""
    body = urlencode({"payload": payload.decode()}).encode()
    headers = github_headers(secret, body, "star", delivery)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return body, headers


async def test_github_form_encoded_deliveries_are_accepted(hub_client, engine):
    payload = (FIXTURES / "github-star-created.json").read_bytes()
    body, headers = form_encoded(GITHUB_SECRET, payload, "d-form")
    response = await hub_client.post("/webhooks/github", data=body, headers=headers)
    assert (response.status, await response.json()) == (202, {"accepted": 1})
    [row] = inbox_rows(engine)
    assert (row.event_id, json.loads(row.event)["content_id"]) == ("d-form", "513384129")


async def test_github_form_deliveries_are_checked_like_json_ones(hub_client, engine):
    payload = (FIXTURES / "github-star-created.json").read_bytes()
    body, headers = form_encoded(GITHUB_SECRET, payload, "d-form")
    # The signature covers the raw form body, not the JSON inside it.
    forged = dict(headers, **github_headers(GITHUB_SECRET, payload, "star", "d-form"))
    forged["Content-Type"] = "application/x-www-form-urlencoded"
    assert (await hub_client.post("/webhooks/github", data=body, headers=forged)).status == 401
    for bad in (b"payload=1&payload=2", b"other=1", b"payload=%7Bnot-json", b"\xff=1", b"a"):
        headers = github_headers(GITHUB_SECRET, bad, "star", "d-bad")
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        response = await hub_client.post("/webhooks/github", data=bad, headers=headers)
        assert (response.status, (await response.json())["error"]) == (400, "invalid_request")
    assert inbox_rows(engine) == []
