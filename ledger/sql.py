"""Small SQL helpers shared by the ledger's storage code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Table, Text, bindparam, cast, column, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.selectable import TableValuedAlias

# The parameter that carries a `recordset_of`'s rows.
ROWS = "rows"
_COMPILED: dict[tuple[Any, ...], str] = {}
_POSITIONAL: dict[tuple[Any, ...], tuple[str, tuple[str, ...]]] = {}


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT for `table` that supports `on_conflict_do_nothing/update` on this backend."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def execute_many(conn: Connection, stmt: Any, rows: list[dict[str, Any]],
                 key: str | None = None) -> None:
    """Run the INSERT `stmt` (maybe with ON CONFLICT) for every row in `rows` (all with the same
    keys). On PostgreSQL the rows travel as one JSON value and become one
    `INSERT … SELECT … FROM json_to_recordset(…)` (`recordset`): one statement and one round
    trip for the batch, where an executemany cost a statement per row. On SQLite the statement
    is compiled and the rows handed to the driver's executemany (SQLAlchemy's own executemany
    processes every parameter of every row in Python, which was most of a batch's ingestion
    time). With `key` (naming `stmt` for its caller) either backend compiles the statement
    once per process (`compiled`)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        names = list(rows[0])
        if key is None:
            source = recordset(stmt.table, rows)
            conn.execute(stmt.from_select(names, select(*source.c)))
            return
        sql = compiled(conn, (key, *names), lambda: stmt.from_select(
            names, select(*recordset_of(stmt.table, names).c)))
        conn.exec_driver_sql(sql, {ROWS: json_rows(rows)})
        return
    names = list(rows[0])
    if key is None:
        sql, positions = _positional(conn, stmt, names)
    else:
        whole = (conn.dialect.name, key, *names)
        cached = _POSITIONAL.get(whole)
        if cached is None:
            cached = _POSITIONAL[whole] = _positional(conn, stmt, names)
        sql, positions = cached
    values_of = itemgetter(*positions)
    params: list[Any] = [values_of(row) for row in rows]
    times = [i for i, value in enumerate(params[0]) if isinstance(value, datetime)]
    if times:
        params = _stored_times(params, times)
    conn.exec_driver_sql(sql, params)


def _positional(conn: Connection, stmt: Any, names: list[str]) -> tuple[str, tuple[str, ...]]:
    """SQLite: the SQL of `stmt` for rows with the keys `names`, and the keys in the order of
    its parameters."""
    done = stmt.compile(dialect=conn.dialect, column_keys=names)
    return done.string, tuple(done.positiontup)


def _stored_times(params: list[tuple[Any, ...]], positions: list[int]
                  ) -> list[tuple[Any, ...]]:
    """`params` with the times at `positions` written as SQLAlchemy stores them in SQLite, so
    that they compare as text with the times it wrote; each time once (a batch's rows share
    their `received_at`)."""
    text_of: dict[datetime, str] = {}
    stored = []
    for values in params:
        changed = list(values)
        for i in positions:
            moment = changed[i]
            text = text_of.get(moment)
            if text is None:
                text = text_of[moment] = moment.isoformat(" ", "microseconds")
            changed[i] = text
        stored.append(tuple(changed))
    return stored


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
    value = bindparam("recordset", json_rows(rows), type_=Text, unique=True)
    return _recordset(table, list(rows[0]), value)


def recordset_of(table: Table, names: list[str]) -> TableValuedAlias:
    """`recordset` for a statement compiled once (`compiled`): the rows are the parameter
    `ROWS`, given at execution as `json_rows(rows)`."""
    return _recordset(table, names, bindparam(ROWS, type_=Text))


def json_rows(rows: list[dict[str, Any]]) -> str:
    """The value of a `recordset`'s parameter."""
    return orjson.dumps(rows).decode()


def _recordset(table: Table, names: list[str], value: Any) -> TableValuedAlias:
    return (func.json_to_recordset(cast(value, JSON))
            .table_valued(*(column(name, table.c[name].type) for name in names))
            .render_derived(name="v", with_types=True))


def compiled(conn: Connection, key: tuple[Any, ...], build: Callable[[], Any]) -> str:
    """The SQL of the statement `build()` returns, compiled for `conn`'s dialect the first time
    `key` is asked for and kept, to run with `conn.exec_driver_sql`: the worker's batch
    statements skip SQLAlchemy's building, cache key and compilation of each statement, about a
    tenth of its CPU per batch. `key` names the statement and whatever shapes it."""
    whole = (conn.dialect.name, *key)
    sql = _COMPILED.get(whole)
    if sql is None:
        sql = _COMPILED[whole] = str(build().compile(dialect=conn.dialect))
    return sql
