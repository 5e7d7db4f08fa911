"""Monthly settlement: settles a month chunk by chunk of givers and writes shares, transfers
and pledges. The division itself is the rule of `ledger.division` (the pure reference, also
used for estimates), expressed here in set-based SQL so that a month costs a few passes over
its flattrs instead of a round trip per flattr; property tests check the two agree.

A run is resumable and idempotent:
1. Start (one transaction): check the month may be settled, close it on the ledger clock (so
   later events go to the next month, rule 4), materialise subscription flattrs (rule 7), lapse
   old pledges (rule 6), and snapshot every user's budget and funds (the amount A).
2. Chunks of givers by id (`settlement_chunks`, one transaction each): a process claims a
   chunk (`FOR UPDATE SKIP LOCKED`), and its shares, transfers, balances, pledges, the run's
   totals and the chunk's `done` move together, so a crash loses at most the chunks in
   progress and a re-run settles the rest. Several processes (`settle`, or workers' helper
   jobs: `settle_chunks`) take chunks at once; each chunk's result depends only on the
   snapshot, so the ledger is the same as after a one-process run. Chunks share receivers'
   revenue accounts and the fees account: their balance updates take turns, last in a chunk.
3. Finish: once every chunk is done, the run is marked done. Settling a done month again
   changes nothing.
Memory is bounded by the chunk size, not the number of users.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    true,
    union_all,
    update,
)

from ledger.accounts import system_account
from ledger.errors import LedgerError
from ledger.ingest import record_flattrs
from ledger.months import add_months, month_end, month_start, parse_month
from ledger.rules import MoneyRules
from ledger.schema import (
    accounts,
    flattrs,
    identities,
    ledger_clock,
    pledges,
    settlement_chunks,
    settlement_runs,
    settlement_snapshot,
    shares,
    subscriptions,
    things,
    transfers,
    users,
)
from ledger.sql import utcnow

CHUNK_WAIT_SECONDS = 0.2
SETTLE_ACCOUNTS_LOCK = 0x5E771E  # pg_advisory_xact_lock key of a chunk's balance update
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


def settle(engine: Engine, month: str, rules: MoneyRules, *,
           progress: Progress | None = None, fault: Fault | None = None,
           now: datetime | None = None, planned: Callable[[], None] | None = None
           ) -> RunSummary:
    """Settle `month` (or finish an interrupted run of it, or join a run another process is
    making); see the module docstring.

    `progress(done, total)` is told how many of the run's chunks are done; `fault(point)` is
    a test hook called at named points, where raising simulates a crash; `planned()` is
    called once the run's chunks exist (to start helpers: `settle_chunks`).
    """
    parse_month(month)
    fault = fault or (lambda _point: None)
    with engine.begin() as conn:
        already_done = _start(conn, month, rules, now or utcnow())
    fault("started")
    if not already_done:
        total = _plan(engine, month, rules.batch_givers)
        if planned:
            planned()
        while _settle_chunks(engine, month, rules, progress, fault, total):
            time.sleep(CHUNK_WAIT_SECONDS)  # the last chunks are another process's
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


def settle_chunks(engine: Engine, month: str, rules: MoneyRules) -> int:
    """Help a running settlement of `month`: settle chunks until none is left to claim (the
    run's own process finishes it). Returns how many chunks this call settled."""
    with engine.connect() as conn:
        planned = conn.execute(select(func.count()).select_from(settlement_chunks)
                               .where(settlement_chunks.c.month == month)).scalar_one()
    settled: list[int] = []
    if planned:
        _settle_chunks(engine, month, rules, lambda done, _total: settled.append(done),
                       lambda _point: None, planned)
    return len(settled)


def _plan(engine: Engine, month: str, batch: int) -> int:
    """Cut the run's givers (from its cursor on) into chunks of `batch` ids, unless that was
    done; return the number of chunks. Refreshes the planner's statistics on PostgreSQL."""
    if engine.dialect.name == "postgresql":
        # Fresh statistics, or the planner takes the just-written snapshot (and the
        # month's shares) for empty tables and joins them by sequential scans.
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE settlement_snapshot, shares, flattrs, pledges")
    with engine.begin() as conn:
        cursor = _cursor(conn, month)  # locked: one process plans
        chunks = select(func.count()).select_from(settlement_chunks).where(
            settlement_chunks.c.month == month)
        if not conn.execute(chunks).scalar_one():
            last = conn.execute(
                select(func.coalesce(func.max(settlement_snapshot.c.user_id), 0))
                .where(settlement_snapshot.c.month == month)
            ).scalar_one()
            conn.execute(insert(settlement_chunks), [
                {"month": month, "low": low, "high": low + batch}
                for low in range(cursor, last + 1, batch)] or
                [{"month": month, "low": cursor, "high": cursor + 1}])
        return conn.execute(chunks).scalar_one()


def _settle_chunks(engine: Engine, month: str, rules: MoneyRules,
                   progress: Progress | None, fault: Fault, total: int) -> bool:
    """Claim and settle chunks of the run, one transaction each, until none is left to claim;
    True when some are still being settled by other processes (claimed, not done)."""
    c = settlement_chunks.c
    while True:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # A chunk's sorts (window functions, pair sums, ordered keys) fit here
                # instead of spilling to disk, and so do its staged shares (temp_buffers
                # can be set only before the session's first temporary table).
                conn.exec_driver_sql("SET LOCAL work_mem = '128MB'")
                conn.exec_driver_sql("SELECT set_config('temp_buffers', '128MB', true) "
                                     "WHERE pg_my_temp_schema() = 0")
            chunk = conn.execute(
                select(c.low, c.high).where(c.month == month, c.done.is_(False))
                .order_by(c.low).limit(1).with_for_update(skip_locked=True)).first()
            if chunk is None:
                return bool(conn.execute(select(func.count()).select_from(settlement_chunks)
                                         .where(c.month == month, c.done.is_(False))
                                         ).scalar_one())
            _settle_chunk(conn, month, chunk.low, chunk.high, rules)
            conn.execute(update(settlement_chunks).where(c.month == month, c.low == chunk.low)
                         .values(done=True))
            fault("chunk_written")
        fault("chunk_committed")
        if progress:
            with engine.connect() as conn:
                done = conn.execute(select(func.count()).select_from(settlement_chunks)
                                    .where(c.month == month, c.done.is_(True))).scalar_one()
            progress(done, total)


def next_month_to_settle(conn: Connection) -> str | None:
    """The month the next run must settle: the one after the last closed, or (before any run)
    the month of the earliest flattr; None when nothing was ever recorded."""
    last = conn.execute(select(ledger_clock.c.last_closed_month)).scalar()
    if last:
        return add_months(last, 1)
    return conn.execute(select(func.min(flattrs.c.month))).scalar()


def _start(conn: Connection, month: str, rules: MoneyRules, now: datetime) -> bool:
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
    expected = next_month_to_settle(conn) or month
    if month > expected or (last_closed is not None and month != expected):
        raise LedgerError(f"months settle in order: settle {expected} before {month}")
    conn.execute(settlement_runs.insert().values(month=month, state="running", started_at=now))
    conn.execute(update(ledger_clock).values(last_closed_month=month))
    _materialise_subscriptions(conn, month)
    conn.execute(
        update(pledges)
        .where(pledges.c.state == "waiting",
               pledges.c.month < add_months(month, -rules.pledge_months))
        .values(state="lapsed")
    )
    _snapshot(conn, month, rules.min_monthly)
    return False


def _materialise_subscriptions(conn: Connection, month: str) -> None:
    """Rule 7: each active subscription is a flattr at the first instant of the month."""
    first = month_start(month)
    active = conn.execute(
        select(subscriptions.c.id, subscriptions.c.user_id, subscriptions.c.thing_id,
               subscriptions.c.start_month, subscriptions.c.months)
        .where(subscriptions.c.start_month <= month, subscriptions.c.cancelled_at.is_(None))
    ).all()
    record_flattrs(conn, [
        {"giver_id": sub.user_id, "thing_id": sub.thing_id, "month": month,
         "occurred_at": first, "source_event_id": f"subscription:{sub.id}:{month}",
         "source": "subscription", "late": False}
        for sub in active
        if month < add_months(sub.start_month, sub.months)
    ])


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
    """The run's cursor (givers below it were settled before chunks existed), locking the
    run's row."""
    return conn.execute(
        select(settlement_runs.c.next_giver_id).where(settlement_runs.c.month == month)
        .with_for_update()
    ).scalar_one()


def _candidates(month: str, low: int, high: int, give_to_get: bool,
                with_pledges: bool) -> tuple[Any, Any]:
    """The chunk's receivable flattrs of funded givers, with the giver's funds and the
    receiver's revenue account: M's own, and (`with_pledges`) waiting pledges carried into M
    (rules 5 and 6), excluding self-flattrs (rule 3); and the carried pledges alone."""
    giver = settlement_snapshot.alias("giver")
    receiver = settlement_snapshot.alias("receiver")

    def owned(base: Any) -> Any:
        return (base.join(things, things.c.id == flattrs.c.thing_id)
                .join(identities, identities.c.id == things.c.owner_identity_id)
                .join(giver, and_(giver.c.month == month, giver.c.user_id == flattrs.c.giver_id,
                                  giver.c.user_id >= low, giver.c.user_id < high,
                                  giver.c.funded))
                .join(receiver, and_(receiver.c.month == month,
                                     receiver.c.user_id == identities.c.claimed_by,
                                     receiver.c.funded if give_to_get else true())))

    columns = (flattrs.c.id.label("flattr_id"), flattrs.c.giver_id, flattrs.c.thing_id,
               flattrs.c.occurred_at, identities.c.claimed_by.label("receiver_id"),
               giver.c.amount, giver.c.funds_account_id, receiver.c.revenue_account_id)
    not_self = identities.c.claimed_by != flattrs.c.giver_id
    own = (select(*columns).select_from(owned(flattrs))
           .where(flattrs.c.month == month, flattrs.c.retracted_at.is_(None),
                  flattrs.c.giver_id >= low, flattrs.c.giver_id < high, not_self))
    carried = (select(*columns)
               .select_from(owned(pledges.join(flattrs, flattrs.c.id == pledges.c.flattr_id)))
               .where(pledges.c.giver_id >= low, pledges.c.giver_id < high,
                      pledges.c.state == "waiting", not_self))
    return (own.union_all(carried) if with_pledges else own).subquery("candidates"), carried


# The chunk's divided shares, each with the accounts it moves money between: written once
# by the division, then read (not recomputed, not joined to the snapshot again) for the
# shares, the transfers, the balances and the run's totals. A temporary table: the
# transaction's own, not logged, gone at its end.
staged = Table(
    "settlement_chunk_shares",
    MetaData(),
    Column("flattr_id", BigInteger, nullable=False),
    Column("giver_id", BigInteger, nullable=False),
    Column("receiver_id", BigInteger, nullable=False),
    Column("funds_account_id", BigInteger, nullable=False),
    Column("revenue_account_id", BigInteger, nullable=False),
    Column("share", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)


def _settle_chunk(conn: Connection, month: str, low: int, high: int,
                  rules: MoneyRules) -> None:
    """Settle the givers with ids in [low, high): the division of `ledger.division`, done in
    SQL so that a month costs a few passes over its flattrs."""
    with_pledges = conn.execute(select(exists().where(
        pledges.c.giver_id >= low, pledges.c.giver_id < high, pledges.c.state == "waiting",
    ))).scalar_one()
    staged.create(conn, checkfirst=False)
    carried = _divide(conn, month, low, high, rules, with_pledges)
    s = staged.c
    conn.execute(insert(shares).from_select(
        ["flattr_id", "month", "giver_id", "receiver_id", "share", "fee", "net"],
        select(s.flattr_id, literal(month), s.giver_id, s.receiver_id, s.share, s.fee, s.net),
    ))
    _transfer_shares(conn, month)
    if with_pledges:
        conn.execute(
            update(pledges)
            .where(pledges.c.flattr_id.in_(select(carried.subquery().c.flattr_id)))
            .values(state="counted", counted_month=month)
        )
    _record_pledges(conn, month, and_(flattrs.c.giver_id >= low, flattrs.c.giver_id < high),
                    rules.give_to_get)
    totals = conn.execute(
        select(func.count(func.distinct(s.giver_id)), func.count(),
               func.coalesce(func.sum(s.share), 0), func.coalesce(func.sum(s.fee), 0))
    ).one()
    staged.drop(conn, checkfirst=False)
    conn.execute(
        update(settlement_runs).where(settlement_runs.c.month == month).values(
            next_giver_id=case((settlement_runs.c.next_giver_id > high,
                                settlement_runs.c.next_giver_id), else_=high),
            givers=settlement_runs.c.givers + totals[0],
            flattrs=settlement_runs.c.flattrs + totals[1],
            amount=settlement_runs.c.amount + totals[2],
            fees=settlement_runs.c.fees + totals[3],
        )
    )


def _divide(conn: Connection, month: str, low: int, high: int, rules: MoneyRules,
            with_pledges: bool) -> Any:
    """Write the chunk's shares into `staged`; return the carried pledges' query."""
    once, carried = _candidates(month, low, high, rules.give_to_get, with_pledges)
    if with_pledges:
        # Rule 1 across a pledge and this month's flattr of the same thing (a month's own
        # flattrs are already unique per thing).
        marked = select(once, func.row_number().over(
            partition_by=(once.c.giver_id, once.c.thing_id),
            order_by=(once.c.occurred_at, once.c.flattr_id)).label("once")).subquery("marked")
        once = select(marked).where(marked.c.once == 1).subquery("once")
    # One window for both (the whole partition as frame, which row_number ignores): one pass
    # over the sorted candidates instead of two.
    window = {"partition_by": once.c.giver_id, "order_by": (once.c.occurred_at, once.c.flattr_id),
              "rows": (None, None)}
    ranked = select(
        once.c.flattr_id, once.c.giver_id, once.c.receiver_id, once.c.amount,
        once.c.funds_account_id, once.c.revenue_account_id,
        func.row_number().over(**window).label("rank"),
        func.count().over(**window).label("n"),
    ).subquery("ranked")
    divided = select(
        ranked.c.flattr_id, ranked.c.giver_id, ranked.c.receiver_id,
        ranked.c.funds_account_id, ranked.c.revenue_account_id,
        (ranked.c.amount // ranked.c.n
         + case((ranked.c.rank <= ranked.c.amount % ranked.c.n, 1), else_=0)).label("share"),
    ).subquery("divided")
    fee = divided.c.share * rules.fee_bps // 10000
    conn.execute(insert(staged).from_select(
        ["flattr_id", "giver_id", "receiver_id", "funds_account_id", "revenue_account_id",
         "share", "fee", "net"],
        select(divided.c.flattr_id, divided.c.giver_id, divided.c.receiver_id,
               divided.c.funds_account_id, divided.c.revenue_account_id,
               divided.c.share, fee, divided.c.share - fee),
    ))
    return carried


def _transfer_shares(conn: Connection, month: str) -> None:
    """Move the chunk's shares as transfers summed per pair of accounts: giver funds → receiver
    revenue (the nets, per giver and receiver) and giver funds → fees (the fees, per giver);
    then update the stored balances by the same sums."""
    s = staged.c
    fees_account = system_account(conn, "fees")
    now = utcnow()
    # Zero-padded ids keep the keys of a run in ascending order, so the unique index on
    # idempotency_key grows at its end instead of splitting pages all over. They are
    # inserted in that order, which is (giver, pairs before the fee, receiver): sorting
    # numbers costs less than sorting the keys.
    prefix = literal(f"settle:{month}:") + _padded(conn, s.giver_id)
    moved = union_all(
        select(s.giver_id.label("giver"), literal(0).label("kind"),
               s.receiver_id.label("receiver"), func.min(s.funds_account_id).label("debit"),
               func.min(s.revenue_account_id).label("credit"), func.sum(s.net).label("amount"),
               literal(f"flattrs {month}").label("reason"),
               (prefix + literal(":") + _padded(conn, s.receiver_id)).label("k"))
        .group_by(s.giver_id, s.receiver_id).having(func.sum(s.net) > 0),
        select(s.giver_id, literal(1), literal(0), func.min(s.funds_account_id),
               literal(fees_account), func.sum(s.fee), literal(f"fees {month}"),
               prefix + literal(":fees"))
        .group_by(s.giver_id).having(func.sum(s.fee) > 0),
    ).subquery("moved")
    conn.execute(insert(transfers).from_select(
        ["debit_id", "credit_id", "amount", "reason", "idempotency_key", "month", "created_at"],
        select(moved.c.debit, moved.c.credit, moved.c.amount, moved.c.reason, moved.c.k,
               literal(month), literal(now))
        .order_by(moved.c.giver, moved.c.kind, moved.c.receiver)))

    moves = union_all(
        select(s.funds_account_id.label("account"), (-func.sum(s.share)).label("delta"))
        .group_by(s.funds_account_id),
        select(s.revenue_account_id, func.sum(s.net)).group_by(s.revenue_account_id),
        select(literal(fees_account), func.sum(s.fee)),
    ).subquery("moves")
    deltas = (select(moves.c.account, func.sum(moves.c.delta).label("delta"))
              .group_by(moves.c.account).having(func.sum(moves.c.delta) != 0)
              .subquery("deltas"))
    if conn.dialect.name == "postgresql":
        # Chunks settled at once share receivers' revenue accounts and the fees account: they
        # take turns for this last step instead of deadlocking over rows locked in different
        # orders (everything before it touches only the chunk's own rows).
        conn.execute(select(func.pg_advisory_xact_lock(SETTLE_ACCOUNTS_LOCK)))
    conn.execute(update(accounts).where(accounts.c.id == deltas.c.account)
                 .values(balance=accounts.c.balance + deltas.c.delta))


def _padded(conn: Connection, column: Any) -> Any:
    """`column` as text, zero-padded to 12 digits."""
    if conn.dialect.name == "postgresql":
        return func.lpad(cast(column, String), 12, "0")
    return func.printf("%012d", column)


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
