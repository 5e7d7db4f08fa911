"""Small SQL helpers shared by the ledger's storage code."""

from __future__ import annotations

from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Table, Text, bindparam, cast, column, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.selectable import TableValuedAlias


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT for `table` that supports `on_conflict_do_nothing/update` on this backend."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def execute_many(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """Run the INSERT `stmt` (maybe with ON CONFLICT) for every row in `rows` (all with the same
    keys). On PostgreSQL the rows travel as one JSON value and become one
    `INSERT … SELECT … FROM json_to_recordset(…)` (`recordset`): one statement and one round
    trip for the batch, where an executemany cost a statement per row. Elsewhere the statement
    is compiled once and the rows handed to the driver's executemany (SQLAlchemy's own
    executemany processes every parameter of every row in Python, which was most of a batch's
    ingestion time)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        source = recordset(stmt.table, rows)
        conn.execute(stmt.from_select(list(rows[0]), select(*source.c)))
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
    return naive(datetime.now(UTC))


def naive(moment: datetime) -> datetime:
    """`moment.replace(tzinfo=None)`, at a fifth of its cost (`replace` parses its keyword
    arguments: a microsecond on each webhook, twice)."""
    return datetime.combine(moment.date(), moment.time())


def recordset(table: Table, rows: list[dict[str, Any]]) -> TableValuedAlias:
    """PostgreSQL: `rows` (dicts with the same keys, named and typed like columns of `table`)
    as a table in a query, `json_to_recordset(:rows) AS v(a type, …)`: a whole batch in one
    bound value, serialised by orjson (psycopg's array dumper escapes every string of an array
    in Python, which cost more than the statement; the json module took 2 ms a batch more).
    Times are naive UTC and travel as ISO 8601 text."""
    names = list(rows[0])
    data = orjson.dumps(rows).decode()
    value = bindparam("recordset", data, type_=Text, unique=True)
    return (func.json_to_recordset(cast(value, JSON))
            .table_valued(*(column(name, table.c[name].type) for name in names))
            .render_derived(name="v", with_types=True))

