"""Small SQL helpers shared by the ledger's storage code."""

from __future__ import annotations

from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT for `table` that supports `on_conflict_do_nothing/update` on this backend."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def execute_many(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """Run `stmt` once per row in `rows` (all with the same keys), compiling it once and handing
    the rows to the driver's executemany. SQLAlchemy's own executemany processes every
    parameter of every row in Python, which was most of a batch's ingestion time."""
    if not rows:
        return
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    if conn.dialect.name == "sqlite":
        values_of = itemgetter(*compiled.positiontup)
        params: list[Any] = [values_of(row) for row in rows]
        times = [i for i, value in enumerate(params[0]) if isinstance(value, datetime)]
        if times:
            params = [_stored_times(values, times) for values in params]
    else:
        params = rows
    conn.exec_driver_sql(compiled.string, params)


def _stored_times(values: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
    """`values` with the times at `positions` written as SQLAlchemy stores them in SQLite, so
    that they compare as text with the times it wrote."""
    changed = list(values)
    for i in positions:
        changed[i] = changed[i].isoformat(" ", "microseconds")
    return tuple(changed)


def utcnow() -> datetime:
    """The current time as naive UTC, the form every ledger time is stored in."""
    return datetime.now(UTC).replace(tzinfo=None)
