"""Helpers for ledger tests: build users and events in a few words."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from ledger import accounts, identities
from ledger.events import NormalisedEvent
from ledger.ingest import IngestResult, ingest

_ids = itertools.count(1)


def make_user(engine: Engine, config: dict[str, Any], name: str, *, budget: int | None = None,
              funds: int = 0, github: str | None = None, claim: bool = True) -> int:
    """A user with a budget, funds and (optionally) a linked and claimed GitHub identity."""
    with engine.begin() as conn:
        uid = accounts.create_user(conn, name)
        if budget is not None:
            accounts.set_budget(conn, uid, budget, config)
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
