"""Prometheus metrics (`GET /metrics`) and readiness (`GET /readyz`) for the hub.

The counters themselves are in `base.metrics`, counted where things happen.
Queue depths, started, scheduled and failed jobs per RQ queue are read from Redis at scrape
time by `QueueCollector`, so they are right whichever process did the work; the events the
worker quarantined (`flattr_inbox_quarantined`) are counted in the database by
`QuarantineCollector`.

Wiring into `hub.app.create_app` (not done here): `metrics.install(app, engine, redis, token)`,
which adds `GET /metrics` and `GET /readyz`.

Access: the metrics include the settlement's money totals, so `/metrics` answers only a
request carrying `Authorization: Bearer <metrics.token>` (401 otherwise); while
`metrics.token` is empty (the default) it answers 404 to everyone. `/readyz` holds no figures
and stays open.

Processes: the hub, the workers and the scheduler are separate processes, and each one's
counters live in its own memory. Set `PROMETHEUS_MULTIPROC_DIR` to an empty folder shared by
all of them (in their environment before they start, cleared at deployment), and `/metrics`
adds up every process's counters (prometheus_client's multiprocess mode); without it,
`/metrics` shows the hub process's own counters only (webhooks, not flattrs or settlement).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from hub.status import health
from pipeline import monitor, quarantine

METRICS = web.AppKey("metrics", CollectorRegistry)
READINESS: web.AppKey[Callable[[], dict[str, str]]] = web.AppKey("readiness")
TOKEN = web.AppKey("metrics_token", str)


class QueueCollector(Collector):
    """RQ's queues as gauges, read from Redis at each scrape. An unreachable Redis is
    `flattr_queue_up 0`, not a failed scrape."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("flattr_queue_up", "1 when Redis answered this scrape")
        families = {
            "depth": GaugeMetricFamily("flattr_queue_depth", "Jobs waiting", labels=["queue"]),
            "started": GaugeMetricFamily("flattr_queue_started_jobs", "Jobs running",
                                         labels=["queue"]),
            "scheduled": GaugeMetricFamily("flattr_queue_scheduled_jobs", "Jobs waiting for "
                                           "their time (retries)", labels=["queue"]),
            "failed": GaugeMetricFamily("flattr_queue_failed_jobs", "Jobs failed for good, "
                                        "kept for inspection and replay", labels=["queue"]),
        }
        try:
            for depth in monitor.depths(self.redis):
                for kind, value in (("depth", depth.queued), ("started", depth.started),
                                    ("scheduled", depth.scheduled), ("failed", depth.failed)):
                    families[kind].add_metric([depth.name], value)
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families.values()


class QuarantineCollector(Collector):
    """`flattr_inbox_quarantined`: events set aside for an operator, counted at each scrape
    (absent while the database does not answer)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            with self.engine.connect() as conn:
                held = quarantine.count(conn)
        except SQLAlchemyError:
            return
        gauge = GaugeMetricFamily("flattr_inbox_quarantined", "Inbox events the worker could "
                                  "not record, waiting for an operator to retry or discard")
        gauge.add_metric([], held)
        yield gauge


class _Forward(Collector):
    """Everything registered in another registry (the process's default one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def scrape_registry(redis: Redis) -> CollectorRegistry:
    """What `/metrics` serves: this process's metrics (or, in multiprocess mode, all
    processes'), and the queues."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(QueueCollector(redis))
    return registry


def readiness(engine: Engine, redis: Redis) -> dict[str, str]:
    """`status` is `ready` when the database and Redis both answer, else `not_ready`."""
    report = health(engine, redis)
    ready = report["database"] == "ok" and report["queue"] == "ok"
    return {"status": "ready" if ready else "not_ready", "database": str(report["database"]),
            "redis": str(report["queue"])}


def install(app: web.Application, engine: Engine, redis: Redis, token: str = "") -> None:
    """Add `GET /metrics` (for the bearer of `token` only; "" = for nobody) and `GET /readyz`
    to the hub application."""
    app[METRICS] = scrape_registry(redis)
    app[METRICS].register(QuarantineCollector(engine))
    app[TOKEN] = token
    app[READINESS] = lambda: readiness(engine, redis)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/readyz", readyz_handler)


async def metrics_handler(request: web.Request) -> web.Response:
    """The Prometheus text format; the queue gauges are read from Redis in a thread."""
    token = request.app[TOKEN]
    if not token:
        return _refused(404, "not_found", "metrics are not served: metrics.token is not set")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        answer = _refused(401, "unauthorized", "metrics need Authorization: Bearer <token>")
        answer.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return answer
    body = await asyncio.get_running_loop().run_in_executor(
        None, generate_latest, request.app[METRICS])
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def _refused(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


async def readyz_handler(request: web.Request) -> web.Response:
    """200 with `{"status": "ready", ...}` when the database and Redis answer; else 503 with
    `{"status": "not_ready", "database": "ok"|"down", "redis": "ok"|"down"}`."""
    report: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(
        None, request.app[READINESS])
    return web.json_response(report, status=200 if report["status"] == "ready" else 503)
