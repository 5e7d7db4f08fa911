"""Settlement runs as operators see them (`/ops/settlements`): month, state, how many givers
and flattrs were settled, the money moved and the fees, when the run started and how long it
took (or has been running)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from ledger.schema import settlement_runs


@dataclass(frozen=True)
class Run:
    month: str
    state: str
    givers: int
    flattrs: int
    amount: int
    fees: int
    started_at: datetime
    finished_at: datetime | None

    def duration(self, now: datetime) -> timedelta:
        """How long the run took; for a run still going, how long it has been running."""
        return (self.finished_at or now) - self.started_at


def recent_runs(conn: Connection, limit: int = 36) -> list[Run]:
    """The `limit` most recent settlement runs, newest month first."""
    r = settlement_runs.c
    rows = conn.execute(
        select(r.month, r.state, r.givers, r.flattrs, r.amount, r.fees, r.started_at,
               r.finished_at).order_by(r.month.desc()).limit(limit))
    return [Run(*row) for row in rows]
