"""Health of the hub's dependencies, for `/healthz`."""

from __future__ import annotations

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline import inbox, quarantine


def health(engine: Engine, redis: Redis) -> dict[str, str | int]:
    """`database` and `queue` are "ok" or "down"; `pending` counts inbox rows not yet recorded,
    `quarantined` the events the worker set aside for an operator (`pipeline.quarantine`).
    The hub accepts events while the queue is down (the inbox is durable); not without the
    database."""
    report: dict[str, str | int] = {"status": "ok"}
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
        if report["status"] == "ok":
            report["status"] = "degraded"
    return report
