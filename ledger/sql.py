"""Small SQL helpers shared by the ledger's storage code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT for `table` that supports `on_conflict_do_nothing/update` on this backend."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def utcnow() -> datetime:
    """The current time as naive UTC, the form every ledger time is stored in."""
    return datetime.now(UTC).replace(tzinfo=None)
