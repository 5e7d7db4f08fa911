"""The hub's group commits into the inbox, on one database connection kept for them.

Only the group-commit thread writes through it, one group at a time, so the connection is
taken once rather than checked out of the pool for every group: on PostgreSQL that saves the
pool's liveness ping before and its rollback after each commit. There the connection is also in
autocommit: a group is one `COPY` statement (`pipeline.inbox.append`), committed as a whole
when it completes, without the round trips of `BEGIN` and `COMMIT`. A connection found broken
is replaced, and the group is written once more on the new one (a group whose commit was lost
with the connection may then be in the inbox twice; the ledger counts an event id once, as for
any redelivery).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from pipeline import inbox


class InboxWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def __call__(self, entries: Sequence[inbox.Entry]) -> None:
        """Store `entries` as pending inbox rows in one transaction; raise if they were not."""
        try:
            self._write(entries)
        except DBAPIError as exc:
            self.close()
            if not exc.connection_invalidated:
                raise
            self._write(entries)

    def _write(self, entries: Sequence[inbox.Entry]) -> None:
        if self._conn is None:
            conn = self.engine.connect()
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            self._conn = conn
        try:
            with self._conn.begin():
                inbox.append(self._conn, entries)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with suppress(DBAPIError):
                conn.close()
