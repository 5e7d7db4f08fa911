"""Property tests (hypothesis): the pure division core, and random months settled end to end
against an independent, straightforward model of the money rules written here in plain Python.

Each generated scenario gets a fresh SQLite file (copied from one migrated template), since
function-scoped fixtures are not reset between hypothesis examples."""

from __future__ import annotations

import random
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from base.config import Settings, with_overrides
from base.db import upgrade
from connectors.registry import default_config
from ledger import accounts, identities
from ledger.db import make_engine
from ledger.division import Candidate, count_once, divide, fee_of, settle_giver
from ledger.events import NormalisedEvent
from ledger.ingest import ingest
from ledger.months import add_months, month_of, month_start
from ledger.schema import shares, things, users
from ledger.settlement import settle
from ledger.verify import verify
from tests.ledger_checks import all_balances, dump

FIRST_MONTH = "2026-03"
LATER = datetime(2027, 6, 1)
OWNERS = ("o0", "o1", "o2")  # owner identities that no user acts with; users may claim them


# The pure core

@given(st.integers(0, 10**9), st.integers(1, 400))
def test_divide_sums_to_the_amount_and_is_fair(amount, count):
    parts = divide(amount, count)
    assert len(parts) == count
    assert sum(parts) == amount
    assert max(parts) - min(parts) <= 1
    assert parts == sorted(parts, reverse=True)  # the extra cents go to the earliest
    assert parts.count(amount // count + 1) == amount % count or amount % count == 0


@given(st.integers(0, 10**6))
def test_divide_over_nothing_is_nothing(amount):
    assert divide(amount, 0) == []


@given(st.integers(0, 10**7), st.integers(0, 10000))
def test_fee_is_floored_and_never_exceeds_the_share(share, fee_bps):
    fee = fee_of(share, fee_bps)
    assert 0 <= fee <= share
    assert fee * 10000 <= share * fee_bps < (fee + 1) * 10000


candidates = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 4), st.integers(0, 20)),
    max_size=25,
).map(lambda rows: [
    Candidate(flattr_id=i + 1, thing_id=thing, receiver_id=receiver,
              occurred_at=datetime(2026, 6, 1) + timedelta(hours=hour))
    for i, (thing, receiver, hour) in enumerate(rows)
])


@given(candidates, st.randoms(use_true_random=False))
def test_count_once_keeps_the_earliest_flattr_of_each_thing_in_order(found, rnd):
    shuffled = list(found)
    rnd.shuffle(shuffled)
    kept = count_once(shuffled)
    earliest = {}
    for c in found:
        if c.thing_id not in earliest or (c.occurred_at, c.flattr_id) < (
                earliest[c.thing_id].occurred_at, earliest[c.thing_id].flattr_id):
            earliest[c.thing_id] = c
    assert sorted(kept, key=lambda c: c.flattr_id) == sorted(earliest.values(),
                                                             key=lambda c: c.flattr_id)
    assert kept == sorted(kept, key=lambda c: (c.occurred_at, c.flattr_id))


@given(st.integers(0, 60000), candidates, st.sampled_from([0, 1, 333, 1000, 2500, 10000]))
def test_settle_giver_divides_the_amount_over_the_counted_flattrs(amount, found, fee_bps):
    result = settle_giver(amount, found, fee_bps)
    counted = count_once(found)
    assert [s.flattr_id for s in result] == [c.flattr_id for c in counted]
    assert [s.receiver_id for s in result] == [c.receiver_id for c in counted]
    if counted:
        assert sum(s.share for s in result) == amount
        assert max(s.share for s in result) - min(s.share for s in result) <= 1
        assert [s.share for s in result] == sorted((s.share for s in result), reverse=True)
    else:
        assert result == []
    for s in result:
        assert s.fee == s.share * fee_bps // 10000
        assert s.net == s.share - s.fee >= 0


# Random months, end to end

@dataclass
class Phase:
    """What happens before month `index` is settled: claims, credits, then events."""

    claims: list[tuple[str, int]]
    credits: list[tuple[int, int]]
    events: list[dict[str, Any]]
    batch_sizes: list[int]
    replay: bool


@dataclass
class Scenario:
    budgets: list[int | None]
    funds: list[int]
    claim_own: list[bool]
    thing_owners: list[str]
    phases: list[Phase]
    config: Settings


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n_users = draw(st.integers(2, 5))
    owners = [f"u{i}" for i in range(n_users)] + list(OWNERS)
    thing_owners = draw(st.lists(st.sampled_from(owners), min_size=2, max_size=6))
    config = default_config()
    config = with_overrides(config, {"give_to_get": draw(st.booleans())})
    config = with_overrides(config, {"pledge_months": draw(st.integers(1, 3))})
    config = with_overrides(config, {"fee_bps": draw(st.sampled_from([0, 333, 1000, 2500]))})
    config = with_overrides(config, {"settlement.batch_givers": draw(st.integers(1, 4))})
    n_months = draw(st.integers(1, 4))
    counter = 0
    phases = []
    for index in range(n_months):
        events = []
        for _ in range(draw(st.integers(0, 14))):
            counter += 1
            late = index > 0 and draw(st.integers(0, 5)) == 0
            month = add_months(FIRST_MONTH, index - 1 if late else index)
            day = draw(st.integers(0, 27))
            events.append({
                "event_id": f"e{counter}",
                # actor n_users is nobody's linked identity: its likes are ignored
                "actor": draw(st.integers(0, n_users)),
                "thing": draw(st.integers(0, len(thing_owners) - 1)),
                "kind": draw(st.sampled_from(["like", "like", "like", "unlike"])),
                # unique times: the order of flattrs never ties
                "at": month_start(month) + timedelta(days=day, seconds=counter),
            })
        sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=6))
        phases.append(Phase(
            claims=draw(st.lists(st.tuples(st.sampled_from(OWNERS), st.integers(0, n_users - 1)),
                                 max_size=2)),
            credits=draw(st.lists(st.tuples(st.integers(0, n_users - 1), st.integers(1, 900)),
                                  max_size=2)),
            events=events, batch_sizes=sizes, replay=draw(st.booleans())))
    return Scenario(
        # mostly funded users, with some unfunded ones (no budget, or funds below minimum)
        budgets=[b if b >= 200 else None for b in draw(
            st.lists(st.integers(150, 900), min_size=n_users, max_size=n_users))],
        funds=draw(st.lists(st.integers(0, 1500), min_size=n_users, max_size=n_users)),
        claim_own=[x > 0 for x in draw(
            st.lists(st.integers(0, 3), min_size=n_users, max_size=n_users))],
        thing_owners=thing_owners, phases=phases, config=config)


@dataclass
class ModelFlattr:
    id: int
    giver: int
    thing: int
    month: str
    occurred_at: datetime
    retracted: bool = False
    pledge: str | None = None  # waiting | counted | lapsed | retracted


@dataclass
class Model:
    """The money rules of money.md, written out directly over plain lists and dicts."""

    scenario: Scenario
    funds: list[int]
    revenue: list[int]
    claimed_by: dict[str, int]
    fees: int = 0
    last_closed: str | None = None
    flattrs: list[ModelFlattr] = field(default_factory=list)
    unlikes: list[tuple[int, int, Any]] = field(default_factory=list)
    shares: dict[tuple[str, int, int], tuple[int, int, int, int]] = field(default_factory=dict)

    def owner(self, thing: int) -> str:
        return self.scenario.thing_owners[thing]

    def event(self, e: dict[str, Any]) -> None:
        giver, thing, at = e["actor"], e["thing"], e["at"]
        if giver >= len(self.funds):
            return  # nobody linked this actor
        month = month_of(at)
        if self.last_closed is not None and month <= self.last_closed:
            month = add_months(self.last_closed, 1)  # rule 4: late
        if e["kind"] == "unlike":  # rule 2: before its month is settled
            self.unlikes.append((giver, thing, at))
            for f in self.flattrs:
                if (f.giver, f.thing) == (giver, thing) and not f.retracted and \
                        f.occurred_at <= at and (self.is_open(f.month) or f.pledge == "waiting"):
                    f.retracted = True
                    if f.pledge == "waiting":
                        f.pledge = "retracted"
            return
        if any((g, t) == (giver, thing) and at <= when for g, t, when in self.unlikes):
            return  # undone by an unlike that arrived before this (earlier) like
        if self.claimed_by.get(self.owner(thing)) == giver:
            return  # rule 3
        for f in self.flattrs:  # rule 1
            if (f.giver, f.thing, f.month) == (giver, thing, month) and not f.retracted:
                f.occurred_at = min(f.occurred_at, at)
                return
        self.flattrs.append(ModelFlattr(len(self.flattrs) + 1, giver, thing, month, at))

    def is_open(self, month: str) -> bool:
        return self.last_closed is None or month > self.last_closed

    def settle(self, month: str) -> None:
        cfg = self.scenario.config
        self.last_closed = month
        for f in self.flattrs:  # rule 6: pledges older than pledge_months lapse
            if f.pledge == "waiting" and f.month < add_months(month, -cfg.pledge_months):
                f.pledge = "lapsed"
        amount = {}
        for user, budget in enumerate(self.scenario.budgets):
            a = min(budget or 0, self.funds[user])
            amount[user] = a if a >= cfg.min_monthly else 0
        funded = {user: a > 0 for user, a in amount.items()}

        def receiver(f: ModelFlattr) -> int | None:  # rule 5; None when not receivable
            claimant = self.claimed_by.get(self.owner(f.thing))
            if claimant is None or claimant == f.giver:
                return None
            return claimant if funded[claimant] or not cfg.give_to_get else None

        own = [f for f in self.flattrs if f.month == month and not f.retracted]
        for giver in range(len(self.funds)):
            if not funded[giver]:
                continue
            mine = [f for f in own if f.giver == giver and receiver(f) is not None]
            carried = [f for f in self.flattrs if f.giver == giver and f.pledge == "waiting"
                       and receiver(f) is not None]
            for f in carried:
                f.pledge = "counted"
            first: dict[int, ModelFlattr] = {}
            for f in sorted(mine + carried, key=lambda f: f.occurred_at):
                first.setdefault(f.thing, f)
            counted = list(first.values())
            if not counted:
                continue
            a, n = amount[giver], len(counted)
            for i, f in enumerate(counted):
                share = a // n + (1 if i < a % n else 0)
                fee = share * cfg.fee_bps // 10000
                to = receiver(f)
                assert to is not None
                self.shares[(month, giver, f.thing)] = (share, fee, share - fee, to)
                self.revenue[to] += share - fee
                self.fees += fee
            self.funds[giver] -= a
        for f in own:  # rule 6: what is not receivable waits as a pledge (not self-flattrs)
            if receiver(f) is None and self.claimed_by.get(self.owner(f.thing)) != f.giver:
                f.pledge = "waiting"


def to_event(e: dict[str, Any], scenario: Scenario) -> NormalisedEvent:
    thing = e["thing"]
    return NormalisedEvent(
        event_id=e["event_id"], platform="github", kind=e["kind"], actor_id=f"u{e['actor']}",
        content_id=f"t{thing}", owner_id=scenario.thing_owners[thing], occurred_at=e["at"])


def batches_of(events: list[dict[str, Any]], sizes: list[int], rnd: random.Random) -> list[list]:
    ordered = sorted(events, key=lambda e: e["at"])
    out, start, i = [], 0, 0
    while start < len(ordered):
        size = sizes[i % len(sizes)]
        chunk = ordered[start:start + size]
        rnd.shuffle(chunk)  # the order inside one batch does not matter
        out.append(chunk)
        start, i = start + size, i + 1
    return out


def db_shares(conn) -> dict[tuple[str, int, int], tuple[int, int, int, int]]:
    """Shares keyed like the model's: (month, giver index, thing index) → (share, fee, net,
    receiver index); user `uN` has index N and thing `tN` index N."""
    giver = users.alias("giver")
    receiver = users.alias("receiver")
    from ledger.schema import flattrs
    rows = conn.execute(
        select(shares.c.month, giver.c.name, things.c.content_id, shares.c.share, shares.c.fee,
               shares.c.net, receiver.c.name.label("receiver"))
        .join(flattrs, flattrs.c.id == shares.c.flattr_id)
        .join(things, things.c.id == flattrs.c.thing_id)
        .join(giver, giver.c.id == shares.c.giver_id)
        .join(receiver, receiver.c.id == shares.c.receiver_id))
    found = {}
    for month, g, content, share, fee, net, r in rows:
        key = (month, int(g[1:]), int(content[1:]))
        assert key not in found, f"two shares for one thing of one giver in {month}"
        found[key] = (share, fee, net, int(r[1:]))
    return found


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "ledger.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


def fresh_engine(template: Path, folder: str):
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{template}{suffix}")
        if source.exists():
            shutil.copy(source, Path(folder) / f"ledger.sqlite3{suffix}")
    return make_engine(f"sqlite:///{Path(folder) / 'ledger.sqlite3'}")


def check_invariants(engine, model_users: int) -> None:
    held = all_balances(engine)
    assert sum(held.values()) == 0
    assert all(balance >= 0 for name, balance in held.items() if name.startswith("user:"))
    with engine.connect() as conn:
        assert verify(conn) == []
        per_giver = defaultdict(int)
        for month, giver, share in conn.execute(
                select(shares.c.month, shares.c.giver_id, shares.c.share)):
            per_giver[(month, giver)] += share
        from ledger.schema import settlement_snapshot as snap
        amounts = {(m, u): a for m, u, a in conn.execute(
            select(snap.c.month, snap.c.user_id, snap.c.amount))}
    for key, total in per_giver.items():
        assert total == amounts[key], f"shares of giver {key} sum to {total}, not A"


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(scenario=scenarios(), seed=st.integers(0, 2**16))
def test_random_months_settle_as_the_model_says(template_db, scenario, seed):
    rnd = random.Random(seed)
    config = scenario.config
    n = len(scenario.budgets)
    with tempfile.TemporaryDirectory() as folder:
        engine = fresh_engine(template_db, folder)
        try:
            uids = []
            with engine.begin() as conn:
                for i in range(n):
                    uid = accounts.create_user(conn, f"u{i}")
                    uids.append(uid)
                    if scenario.budgets[i] is not None:
                        accounts.set_budget(conn, uid, scenario.budgets[i], config.money)
                    if scenario.funds[i]:
                        accounts.credit_funds(conn, uid, scenario.funds[i], "start", f"start:{i}")
                    identities.link(conn, uid, "github", f"u{i}", claim=scenario.claim_own[i])
            model = Model(scenario, list(scenario.funds), [0] * n,
                          {f"u{i}": i for i in range(n) if scenario.claim_own[i]})
            for index, phase in enumerate(scenario.phases):
                month = add_months(FIRST_MONTH, index)
                with engine.begin() as conn:
                    for owner, user in phase.claims:
                        if owner not in model.claimed_by:
                            identities.link(conn, uids[user], "github", owner, claim=True)
                            model.claimed_by[owner] = user
                    for number, (user, amount) in enumerate(phase.credits):
                        accounts.credit_funds(conn, uids[user], amount, "top-up",
                                              f"top-up:{index}:{number}")
                        model.funds[user] += amount
                batches = batches_of(phase.events, phase.batch_sizes, rnd)
                for batch in batches:
                    with engine.begin() as conn:
                        ingest(conn, [to_event(e, scenario) for e in batch])
                    for e in sorted(batch, key=lambda e: e["at"]):
                        model.event(e)
                if phase.replay and batches:  # a replayed delivery changes nothing
                    before = dump(engine)
                    with engine.begin() as conn:
                        result = ingest(conn, [to_event(e, scenario)
                                               for e in rnd.choice(batches)])
                    assert set(result.outcomes.values()) <= {"duplicate"}
                    assert dump(engine) == before

                first = settle(engine, month, config.money, now=LATER)
                model.settle(month)
                once = dump(engine)
                again = settle(engine, month, config.money, now=LATER)
                assert again.already_done and not first.already_done
                assert dump(engine) == once  # settling twice equals settling once

                with engine.connect() as conn:
                    assert db_shares(conn) == model.shares
                    for i, uid in enumerate(uids):
                        assert accounts.balances(conn, uid) == {
                            "funds": model.funds[i], "revenue": model.revenue[i]}
                assert all_balances(engine).get("fees", 0) == model.fees
                check_invariants(engine, n)
            # what the example exercised (shown by --hypothesis-show-statistics)
            event(f"shares: {'some' if model.shares else 'none'}")
            for state in ("counted", "lapsed", "retracted", "waiting"):
                if any(f.pledge == state for f in model.flattrs):
                    event(f"pledge {state}")
            if any(f.retracted and f.pledge is None for f in model.flattrs):
                event("flattr retracted")
        finally:
            engine.dispose()
