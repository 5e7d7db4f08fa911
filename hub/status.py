"""Health of the hub's dependencies and of the stream connectors, for `/healthz`."""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from base.config import Settings
from connectors.streams import stream_states
from pipeline import inbox, quarantine


def health(engine: Engine, redis: Redis,
           config: Settings | None = None) -> dict[str, Any]:
    """`database` and `queue` are "ok" or "down"; `pending` counts inbox rows not yet recorded,
    `quarantined` the events the worker set aside for an operator (`pipeline.quarantine`).
    The hub accepts events while the queue is down (the inbox is durable); not without the
    database. With `config`, `streams` has each configured stream connector's `connected`
    (null when Redis does not answer), `last_event_at`, `lag_seconds` and `updated_at`; one
    that is not connected makes the status "degraded"."""
    report: dict[str, Any] = {"status": "ok"}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            report["pending"] = inbox.pending_count(conn)
            report["quarantined"] = quarantine.count(conn)
        report["database"] = "ok"
    except SQLAlchemyError:
        report.update(status="down", database="down")
    try:
        redis.ping()
        report["queue"] = "ok"
    except RedisError:
        report["queue"] = "down"
    if config is not None:
        report["streams"] = {
            stream.name: state.to_dict() if state else {"connected": None}
            for stream, state in stream_states(redis, config)}
    streams_down = any(not s["connected"] for s in report.get("streams", {}).values())
    if report["status"] == "ok" and (report["queue"] == "down" or streams_down):
        report["status"] = "degraded"
    return report
