"""Helpers for ledger tests: build users and events in a few words."""

from __future__ import annotations

import itertools
import random
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from base.config import Settings
from ledger import accounts, identities
from ledger.events import NormalisedEvent
from ledger.ingest import IngestResult, ingest

_ids = itertools.count(1)


def make_user(engine: Engine, config: Settings, name: str, *, budget: int | None = None,
              funds: int = 0, github: str | None = None, claim: bool = True) -> int:
    """A user with a budget, funds and (optionally) a linked and claimed GitHub identity."""
    with engine.begin() as conn:
        uid = accounts.create_user(conn, name)
        if budget is not None:
            accounts.set_budget(conn, uid, budget, config.money)
        if funds:
            accounts.credit_funds(conn, uid, funds, "test", f"test:{name}:{funds}")
        if github:
            identities.link(conn, uid, "github", github, claim=claim)
    return uid


def star(actor: str, repo: str, owner: str, when: str, kind: str = "like",
         event_id: str | None = None, platform: str = "github") -> NormalisedEvent:
    return NormalisedEvent(
        event_id=event_id or f"evt-{next(_ids)}", platform=platform, kind=kind,
        actor_id=actor, content_id=repo, owner_id=owner,
        occurred_at=datetime.fromisoformat(when))


def feed(engine: Engine, *events: NormalisedEvent) -> IngestResult:
    with engine.begin() as conn:
        return ingest(conn, list(events))


def build_month(engine: Engine, config: Settings, *, givers: int, seed: int = 7,
                month: str = "2026-06") -> None:
    """A deterministic, varied month: funded and unfunded givers, claimed and unclaimed
    creators, repeated likes and unlikes."""
    rng = random.Random(seed)
    creators = [f"c{n}" for n in range(8)]
    for n, creator in enumerate(creators):
        if n % 4 != 3:
            make_user(engine, config, creator, budget=200, funds=rng.choice([0, 150, 400]),
                      github=creator)
    events = []
    for g in range(givers):
        make_user(engine, config, f"g{g}", budget=rng.choice([200, 500, 1000]),
                  funds=rng.choice([0, 199, 300, 5000]), github=f"g{g}", claim=False)
        for _ in range(rng.randint(0, 6)):
            creator = rng.choice(creators)
            repo = f"{creator}-r{rng.randint(0, 3)}"
            day = rng.randint(1, 28)
            kind = "unlike" if rng.random() < 0.1 else "like"
            events.append(star(f"g{g}", repo, creator, f"{month}-{day:02d}T{g % 24:02d}:00:00",
                               kind=kind, event_id=f"{seed}-{g}-{len(events)}"))
    with engine.begin() as conn:
        ingest(conn, events)


def dump_ledger(engine: Engine) -> dict[str, Any]:
    """Everything settlement writes, keyed by names rather than generated ids."""
    from sqlalchemy import select

    from ledger.schema import accounts as acc
    from ledger.schema import flattrs, pledges, shares, things, transfers, users

    debit, credit = acc.alias("d"), acc.alias("c")
    with engine.connect() as conn:
        return {
            "balances": sorted(conn.execute(select(acc.c.name, acc.c.balance)).all()),
            "transfers": sorted(conn.execute(
                select(transfers.c.idempotency_key, debit.c.name, credit.c.name,
                       transfers.c.amount)
                .join(debit, debit.c.id == transfers.c.debit_id)
                .join(credit, credit.c.id == transfers.c.credit_id)).all()),
            "shares": sorted(conn.execute(
                select(users.c.name, things.c.content_id, shares.c.month, shares.c.share,
                       shares.c.fee, shares.c.net)
                .join(flattrs, flattrs.c.id == shares.c.flattr_id)
                .join(users, users.c.id == shares.c.giver_id)
                .join(things, things.c.id == flattrs.c.thing_id)).all()),
            "pledges": sorted(conn.execute(
                select(users.c.name, things.c.content_id, pledges.c.state,
                       pledges.c.counted_month)
                .join(flattrs, flattrs.c.id == pledges.c.flattr_id)
                .join(users, users.c.id == pledges.c.giver_id)
                .join(things, things.c.id == flattrs.c.thing_id)).all()),
        }
