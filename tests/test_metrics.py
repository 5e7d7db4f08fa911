"""`/metrics` and `/readyz` on a minimal aiohttp app: counters as recorded, queue gauges read
from Redis at scrape time, other processes' counters in multiprocess mode, and readiness that
fails (503, JSON) when the database or Redis does not answer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine

from base import metrics as counters
from base.config import with_overrides
from hub import metrics
from hub.app import create_app
from ledger.settlement import RunSummary
from pipeline.queues import queue
from tests.hub_helpers import METRICS_AUTH, METRICS_TOKEN
from workers.worker import FlattrWorker

pytest_plugins = ["tests.hub_fixtures"]

REPO = Path(__file__).resolve().parents[1]


async def client_for(aiohttp_client, engine, redis, token: str = METRICS_TOKEN):
    app = web.Application()
    metrics.install(app, engine, redis, token)
    return await aiohttp_client(app)


async def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics", headers=METRICS_AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(await response.text())
            for sample in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def unreachable_redis() -> Redis:
    return Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5,
                 retry=Retry(NoBackoff(), 0))


async def test_metrics_count_what_was_recorded(aiohttp_client, engine, redis):
    client = await client_for(aiohttp_client, engine, redis)
    before = await scrape(client)

    counters.webhook_received("github")
    counters.webhook_verified("github")
    counters.webhook_received("github")
    counters.webhook_rejected("github", "signature")
    counters.webhook_received("nonsense-platform")
    counters.webhook_rejected("nonsense-platform", "unknown_platform")
    counters.record_ingest({"flattred": 3, "pledge": 2, "retracted": 1, "duplicate": 4,
                           "unknown_actor": 5, "already": 0, "self": 1})
    counters.record_settlement(RunSummary("2026-06", "done", 2, 3, 500, 48, False), 2.5)
    counters.record_settlement(RunSummary("2026-06", "done", 2, 3, 500, 48, True), 0.1)
    counters.record_polls("x", {"polled": 4, "rate_limited": 2, "likes": 9, "requests": 6})
    after = await scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("flattr_webhooks_received_total", platform="github") == 2
    assert delta("flattr_webhooks_verified_total", platform="github") == 1
    assert delta("flattr_webhooks_rejected_total", platform="github", reason="signature") == 1
    assert delta("flattr_webhooks_received_total", platform="other") == 1
    assert delta("flattr_webhooks_rejected_total", platform="other",
                 reason="unknown_platform") == 1
    assert [delta("flattr_flattrs_total", result=result)
            for result in ("counted", "pledged", "retracted")] == [3, 2, 1]
    assert delta("flattr_events_deduplicated_total") == 4
    assert delta("flattr_unknown_actors_total") == 5
    assert delta("flattr_settlement_duration_seconds_count") == 1
    assert delta("flattr_settlement_duration_seconds_sum") == 2.5
    assert delta("flattr_settlement_amount_minor_units_total") == 500
    assert delta("flattr_settlement_fees_minor_units_total") == 48
    assert delta("flattr_settlement_flattrs_total") == 3
    assert delta("flattr_poller_rounds_total", platform="x", status="polled") == 4
    assert delta("flattr_poller_rounds_total", platform="x", status="rate_limited") == 2
    assert delta("flattr_poller_rate_limited_total", platform="x") == 2
    assert not any(dict(labels).get("platform") == "nonsense-platform" for _, labels in after)
    with pytest.raises(ValueError, match="unknown reject reason"):
        counters.webhook_rejected("github", "because")


def fail() -> None:
    raise RuntimeError("this job fails")


async def test_queue_gauges_are_read_from_redis_at_scrape_time(aiohttp_client, engine, redis,
                                                              worker_context):
    client = await client_for(aiohttp_client, engine, redis)
    queue("settlement", redis).enqueue(fail)
    FlattrWorker([queue("settlement", redis)], connection=redis).work(burst=True)
    queue("events", redis).enqueue(fail)
    queue("events", redis).enqueue(fail)
    samples = await scrape(client)
    assert value(samples, "flattr_queue_up") == 1
    assert value(samples, "flattr_queue_depth", queue="events") == 2
    assert value(samples, "flattr_queue_depth", queue="settlement") == 0
    assert value(samples, "flattr_queue_failed_jobs", queue="settlement") == 1
    assert value(samples, "flattr_queue_failed_jobs", queue="events") == 0
    assert {dict(labels)["queue"] for name, labels in samples
            if name == "flattr_queue_scheduled_jobs"} == {
                "settlement", "events", "connectors", "outbound", "notifications"}


async def test_metrics_answer_while_redis_is_down(aiohttp_client, engine):
    client = await client_for(aiohttp_client, engine, unreachable_redis())
    samples = await scrape(client)
    assert value(samples, "flattr_queue_up") == 0
    assert not any(name == "flattr_queue_depth" for name, _ in samples)


async def test_readyz_when_database_and_redis_answer(aiohttp_client, engine, redis):
    client = await client_for(aiohttp_client, engine, redis)
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "database": "ok", "redis": "ok"}


async def test_readyz_is_503_without_redis(aiohttp_client, engine):
    client = await client_for(aiohttp_client, engine, unreachable_redis())
    response = await client.get("/readyz")
    assert response.status == 503
    assert await response.json() == {"status": "not_ready", "database": "ok", "redis": "down"}


async def test_readyz_is_503_without_the_database(aiohttp_client, redis, tmp_path):
    missing = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'hub.sqlite3'}")
    client = await client_for(aiohttp_client, missing, redis)
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.content_type == "application/json"
    assert await response.json() == {"status": "not_ready", "database": "down", "redis": "ok"}


async def test_multiprocess_mode_adds_up_other_processes(aiohttp_client, engine, redis,
                                                         tmp_path, monkeypatch):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    script = ("import connectors.registry; from base import metrics; "
              "metrics.record_ingest({'flattred': 3}); "
              "metrics.record_polls('soundcloud', {'rate_limited': 1})")
    for _ in range(2):  # two worker processes
        subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=60,
                       env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)})
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    samples = await scrape(await client_for(aiohttp_client, engine, redis))
    assert value(samples, "flattr_flattrs_total", result="counted") == 6
    assert value(samples, "flattr_poller_rate_limited_total", platform="soundcloud") == 2
    assert value(samples, "flattr_queue_up") == 1


async def test_metrics_are_for_the_bearer_of_the_token_only(aiohttp_client, config, engine,
                                                            redis):
    """/metrics shows the settlement's money totals: off while metrics.token is unset (the
    default), and for the bearer of the token only."""
    counters.record_settlement(RunSummary("2026-07", "done", 1, 1, 700, 70, False), 1.0)
    config = with_overrides(config, {"metrics.token": ""})
    public = await aiohttp_client(create_app(config, engine, redis))
    answer = await public.get("/metrics")
    assert answer.status == 404 and "settlement" not in await answer.text()
    assert (await answer.json())["error"] == "not_found"
    assert (await public.get("/readyz")).status == 200

    client = await client_for(aiohttp_client, engine, redis)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        refused = await client.get("/metrics", headers=headers)
        assert refused.status == 401 and "settlement" not in await refused.text()
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    shown = await client.get("/metrics", headers=METRICS_AUTH)
    assert "flattr_settlement_amount_minor_units_total" in await shown.text()
