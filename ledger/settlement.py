"""Monthly settlement: the storage side. Reads a month in chunks of givers, lets
`ledger.division` compute the shares, and writes shares, transfers and pledges.

A run is resumable and idempotent:
1. Start (one transaction): check the month may be settled, close it on the ledger clock (so
   later events go to the next month, rule 4), materialise subscription flattrs (rule 7), lapse
   old pledges (rule 6), and snapshot every user's budget and funds (the amount A).
2. Chunks of givers by id (one transaction each): shares, transfers, balances, pledges, and the
   run's cursor move together, so a crash loses at most the chunk in progress and a re-run
   continues after the last committed one.
3. Finish: the run is marked done. Settling a done month again changes nothing.
Memory is bounded by the chunk size, not the number of users.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    case,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    true,
    update,
)

from ledger.accounts import apply_deltas, system_account
from ledger.division import Candidate, Share, settle_giver
from ledger.errors import LedgerError
from ledger.months import add_months, month_end, month_start, parse_month
from ledger.schema import (
    accounts,
    flattrs,
    identities,
    ledger_clock,
    pledges,
    settlement_runs,
    settlement_snapshot,
    shares,
    subscriptions,
    things,
    transfers,
    users,
)
from ledger.sql import dialect_insert, utcnow

Fault = Callable[[str], None]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RunSummary:
    month: str
    state: str
    givers: int
    flattrs: int
    amount: int
    fees: int
    already_done: bool


def settle(engine: Engine, month: str, config: Mapping[str, Any], *,
           progress: Progress | None = None, fault: Fault | None = None,
           now: datetime | None = None) -> RunSummary:
    """Settle `month` (or finish an interrupted run of it); see the module docstring.

    `progress(done, total)` is told how far the givers are; `fault(point)` is a test hook
    called at named points, where raising simulates a crash.
    """
    parse_month(month)
    fault = fault or (lambda _point: None)
    with engine.begin() as conn:
        already_done = _start(conn, month, config, now or utcnow())
    fault("started")
    if not already_done:
        batch = int(config["settlement"]["batch_givers"])
        with engine.connect() as conn:
            last = conn.execute(
                select(func.coalesce(func.max(settlement_snapshot.c.user_id), 0))
                .where(settlement_snapshot.c.month == month)
            ).scalar_one()
        while True:
            with engine.begin() as conn:
                low = _cursor(conn, month)
                if low > last:
                    break
                _settle_chunk(conn, month, low, low + batch, config)
                fault("chunk_written")
            fault("chunk_committed")
            if progress:
                progress(min(low + batch, last + 1), last + 1)
        with engine.begin() as conn:
            conn.execute(
                update(settlement_runs)
                .where(settlement_runs.c.month == month, settlement_runs.c.state == "running")
                .values(state="done", finished_at=utcnow())
            )
    with engine.connect() as conn:
        run = conn.execute(
            select(settlement_runs).where(settlement_runs.c.month == month)).one()
    return RunSummary(month, run.state, run.givers, run.flattrs, run.amount, run.fees,
                      already_done)


def next_month_to_settle(conn: Connection) -> str | None:
    """The month the next run must settle: the one after the last closed, or (before any run)
    the month of the earliest flattr; None when nothing was ever recorded."""
    last = conn.execute(select(ledger_clock.c.last_closed_month)).scalar()
    if last:
        return add_months(last, 1)
    return conn.execute(select(func.min(flattrs.c.month))).scalar()


def _start(conn: Connection, month: str, config: Mapping[str, Any], now: datetime) -> bool:
    """Open the run for `month`; True when it was already done."""
    last_closed = conn.execute(
        select(ledger_clock.c.last_closed_month).with_for_update()).scalar()
    state = conn.execute(
        select(settlement_runs.c.state).where(settlement_runs.c.month == month)).scalar()
    if state is not None:
        return state == "done"
    if month_end(month) > now:
        raise LedgerError(f"month {month} has not ended yet")
    if last_closed is not None and month <= last_closed:
        raise LedgerError(f"month {month} is before the last settled month {last_closed}")
    expected = next_month_to_settle(conn)
    if expected is not None and month != expected:
        raise LedgerError(f"months settle in order: settle {expected} before {month}")
    conn.execute(settlement_runs.insert().values(month=month, state="running", started_at=now))
    conn.execute(update(ledger_clock).values(last_closed_month=month))
    _materialise_subscriptions(conn, month)
    conn.execute(
        update(pledges)
        .where(pledges.c.state == "waiting",
               pledges.c.month < add_months(month, -int(config["pledge_months"])))
        .values(state="lapsed")
    )
    _snapshot(conn, month, int(config["min_monthly"]))
    return False


def _materialise_subscriptions(conn: Connection, month: str) -> None:
    """Rule 7: each active subscription is a flattr at the first instant of the month."""
    first = month_start(month)
    active = conn.execute(
        select(subscriptions.c.id, subscriptions.c.user_id, subscriptions.c.thing_id,
               subscriptions.c.start_month, subscriptions.c.months)
        .where(subscriptions.c.start_month <= month, subscriptions.c.cancelled_at.is_(None))
    ).all()
    stmt = dialect_insert(conn, flattrs)
    stmt = stmt.on_conflict_do_update(
        index_elements=["giver_id", "thing_id", "month"],
        index_where=flattrs.c.retracted_at.is_(None),
        set_={"occurred_at": stmt.excluded.occurred_at,
              "source_event_id": stmt.excluded.source_event_id,
              "source": stmt.excluded.source},
        where=stmt.excluded.occurred_at < flattrs.c.occurred_at,
    )
    rows = [
        {"giver_id": sub.user_id, "thing_id": sub.thing_id, "month": month,
         "occurred_at": first, "source_event_id": f"subscription:{sub.id}:{month}",
         "source": "subscription", "late": False}
        for sub in active
        if month < add_months(sub.start_month, sub.months)
    ]
    if rows:
        conn.execute(stmt, rows)


def _snapshot(conn: Connection, month: str, min_monthly: int) -> None:
    """One snapshot of every user's budget B and funds: A = min(B, funds), funded if A ≥ min."""
    funds = accounts.alias("funds")
    revenue = accounts.alias("revenue")
    budget = func.coalesce(users.c.budget, 0)
    least = case((budget < funds.c.balance, budget), else_=funds.c.balance)
    conn.execute(insert(settlement_snapshot).from_select(
        ["month", "user_id", "funds_account_id", "revenue_account_id", "budget", "funds",
         "amount", "funded"],
        select(literal(month), users.c.id, funds.c.id, revenue.c.id, budget, funds.c.balance,
               case((least >= min_monthly, least), else_=0), least >= min_monthly)
        .join_from(users, funds, and_(funds.c.user_id == users.c.id, funds.c.kind == "funds"))
        .join(revenue, and_(revenue.c.user_id == users.c.id, revenue.c.kind == "revenue")),
    ))


def _cursor(conn: Connection, month: str) -> int:
    return conn.execute(
        select(settlement_runs.c.next_giver_id).where(settlement_runs.c.month == month)
        .with_for_update()
    ).scalar_one()


def _settle_chunk(conn: Connection, month: str, low: int, high: int,
                  config: Mapping[str, Any]) -> None:
    giver = settlement_snapshot.alias("giver")
    receiver = settlement_snapshot.alias("receiver")
    receiver_ok = and_(receiver.c.month == month, receiver.c.user_id == identities.c.claimed_by,
                       receiver.c.funded if config["give_to_get"] else true())
    in_chunk = and_(flattrs.c.giver_id >= low, flattrs.c.giver_id < high)
    columns = (flattrs.c.giver_id, flattrs.c.id, flattrs.c.thing_id, flattrs.c.occurred_at,
               identities.c.claimed_by, giver.c.amount, giver.c.funds_account_id,
               receiver.c.revenue_account_id)
    owned = (flattrs.join(things, things.c.id == flattrs.c.thing_id)
             .join(identities, identities.c.id == things.c.owner_identity_id)
             .join(giver, and_(giver.c.month == month, giver.c.user_id == flattrs.c.giver_id,
                               giver.c.funded))
             .join(receiver, receiver_ok))
    not_self = identities.c.claimed_by != flattrs.c.giver_id
    own = (select(*columns, literal(False).label("pledged")).select_from(owned)
           .where(flattrs.c.month == month, flattrs.c.retracted_at.is_(None), in_chunk, not_self))
    carried = (select(*columns, literal(True).label("pledged"))
               .select_from(owned.join(pledges, pledges.c.flattr_id == flattrs.c.id))
               .where(pledges.c.state == "waiting", in_chunk, not_self))
    rows = conn.execute(own.union_all(carried)).all()

    by_giver: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_giver[row.giver_id].append(row)
    fee_bps = int(config["fee_bps"])
    share_rows: list[dict[str, Any]] = []
    transfer_rows: list[dict[str, Any]] = []
    deltas: dict[int, int] = defaultdict(int)
    fees_total = 0
    now = utcnow()
    fees_account = system_account(conn, "fees")
    for giver_id, items in by_giver.items():
        first = items[0]
        revenue_of = {item.claimed_by: item.revenue_account_id for item in items}
        result = settle_giver(first.amount, [
            Candidate(item.id, item.thing_id, item.claimed_by, item.occurred_at)
            for item in items], fee_bps)
        share_rows += [{"flattr_id": s.flattr_id, "month": month, "giver_id": giver_id,
                        "receiver_id": s.receiver_id, "share": s.share, "fee": s.fee,
                        "net": s.net} for s in result]
        for receiver_id, (net, fee) in _per_receiver(result).items():
            key = f"settle:{month}:{giver_id}:{receiver_id}"
            for amount, credit, suffix, what in ((net, revenue_of[receiver_id], "", "flattrs"),
                                                 (fee, fees_account, ":fee", "fee")):
                if amount:
                    transfer_rows.append({
                        "debit_id": first.funds_account_id, "credit_id": credit,
                        "amount": amount, "reason": f"{what} {month}",
                        "idempotency_key": key + suffix, "month": month, "created_at": now})
                    deltas[credit] += amount
            fees_total += fee
        deltas[first.funds_account_id] -= first.amount
    if share_rows:
        conn.execute(shares.insert(), share_rows)
        conn.execute(transfers.insert(), transfer_rows)
        apply_deltas(conn, deltas)
    pledge_ids = [row.id for row in rows if row.pledged]
    for start in range(0, len(pledge_ids), 1000):
        conn.execute(update(pledges)
                     .where(pledges.c.flattr_id.in_(pledge_ids[start:start + 1000]))
                     .values(state="counted", counted_month=month))
    _record_pledges(conn, month, in_chunk, bool(config["give_to_get"]))
    conn.execute(
        update(settlement_runs).where(settlement_runs.c.month == month).values(
            next_giver_id=high,
            givers=settlement_runs.c.givers + len(by_giver),
            flattrs=settlement_runs.c.flattrs + len(share_rows),
            amount=settlement_runs.c.amount + sum(r["share"] for r in share_rows),
            fees=settlement_runs.c.fees + fees_total,
        )
    )


def _per_receiver(result: list[Share]) -> dict[int, tuple[int, int]]:
    totals: dict[int, tuple[int, int]] = {}
    for share in result:
        net, fee = totals.get(share.receiver_id, (0, 0))
        totals[share.receiver_id] = (net + share.net, fee + share.fee)
    return totals


def _record_pledges(conn: Connection, month: str, in_chunk: Any, give_to_get: bool) -> None:
    """Rule 6: the chunk's flattrs of `month` that are not receivable (and not self-flattrs)
    wait as pledges for their owner identity."""
    receiver = settlement_snapshot.alias("receiver")
    receivable = and_(identities.c.claimed_by.is_not(None), receiver.c.user_id.is_not(None),
                      receiver.c.funded if give_to_get else true())
    not_self = or_(identities.c.claimed_by.is_(None),
                   identities.c.claimed_by != flattrs.c.giver_id)
    conn.execute(insert(pledges).from_select(
        ["flattr_id", "giver_id", "identity_id", "month"],
        select(flattrs.c.id, flattrs.c.giver_id, identities.c.id, literal(month))
        .select_from(
            flattrs.join(things, things.c.id == flattrs.c.thing_id)
            .join(identities, identities.c.id == things.c.owner_identity_id)
            .outerjoin(receiver, and_(receiver.c.month == month,
                                      receiver.c.user_id == identities.c.claimed_by)))
        .where(flattrs.c.month == month, flattrs.c.retracted_at.is_(None), in_chunk,
               not_(receivable), not_self),
    ))
