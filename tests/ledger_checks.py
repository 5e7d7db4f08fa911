"""Read-only helpers for ledger tests: balances, shares, statements and a dump of every table,
so that a test can assert outcomes (and that nothing changed) in a few words."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from connectors.registry import default_config
from ledger import accounts
from ledger.schema import accounts as accounts_table
from ledger.schema import flattrs, metadata, pledges, shares, things
from ledger.statement import statement
from ledger.verify import verify


def balances(engine: Engine, uid: int) -> dict[str, int]:
    with engine.connect() as conn:
        return accounts.balances(conn, uid)


def system_balance(engine: Engine, name: str = "fees") -> int:
    with engine.connect() as conn:
        found = conn.execute(
            select(accounts_table.c.balance).where(accounts_table.c.name == name)).scalar()
    return found or 0


def all_balances(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(accounts_table.c.name, accounts_table.c.balance)).all())


def shares_of(engine: Engine, month: str | None = None) -> list[dict[str, Any]]:
    """Every share (of `month`), with the thing's content id and the flattr's own month/time."""
    query = (select(shares.c.flattr_id, shares.c.month, shares.c.giver_id, shares.c.receiver_id,
                    shares.c.share, shares.c.fee, shares.c.net, things.c.content_id,
                    flattrs.c.month.label("flattr_month"), flattrs.c.occurred_at,
                    flattrs.c.late, flattrs.c.source)
             .join(flattrs, flattrs.c.id == shares.c.flattr_id)
             .join(things, things.c.id == flattrs.c.thing_id)
             .order_by(flattrs.c.occurred_at, shares.c.flattr_id))
    if month is not None:
        query = query.where(shares.c.month == month)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def flattr_rows(engine: Engine, content_id: str | None = None) -> list[dict[str, Any]]:
    query = (select(flattrs, things.c.content_id, pledges.c.state.label("pledge"),
                    pledges.c.counted_month)
             .join(things, things.c.id == flattrs.c.thing_id)
             .outerjoin(pledges, pledges.c.flattr_id == flattrs.c.id)
             .order_by(flattrs.c.id))
    if content_id is not None:
        query = query.where(things.c.content_id == content_id)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def report(engine: Engine, uid: int, month: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return statement(conn, uid, month, default_config().money)


def statuses(engine: Engine, uid: int, month: str) -> dict[str, list[str]]:
    """content id → the statuses of the user's given rows of that thing in the statement."""
    found: dict[str, list[str]] = {}
    for row in report(engine, uid, month)["given"]:
        found.setdefault(row["content_id"], []).append(row["status"])
    return found


def problems(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return verify(conn)


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ledger table, sorted: equal dumps mean an unchanged ledger."""
    with engine.connect() as conn:
        return {table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
                for table in metadata.sorted_tables}
