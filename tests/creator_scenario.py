"""A small scenario for the dashboard, pledge and public-page tests, built with the ledger's own
functions and settlement, in months counted back from today (two settled months and the
current one, open):

- ana (budget 500, funds 2000, GitHub 1 linked) gives; bo (budget 200, funds 300) owns GitHub
  2; GitHub 3 and 4 belong to someone not on the hub.
- M1: ana stars r1, r2, r4 (bo's) and r3 (GitHub 3's), and r1 again: shares 167, 167, 166,
  r3 pledged. M2: ana stars r5 (bo's): one share of 500; and r9 (GitHub 4's), pledged.
- This month: ana stars r6 (bo's), r7 (GitHub 3's) and r8 (bo's, then unstarred).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from base.config import Settings
from ledger import identities
from ledger.months import add_months, month_of
from ledger.settlement import settle
from ledger.sql import utcnow
from members.logins import set_password
from tests.ledger_helpers import feed, make_user, star
from tests.web_helpers import PASSWORD


@dataclass(frozen=True)
class Scenario:
    m1: str
    m2: str
    now: str  # the current month
    ana: int
    bo: int


def build(engine: Engine, config: Settings) -> Scenario:
    now = month_of(utcnow())
    m1, m2 = add_months(now, -2), add_months(now, -1)
    ana = make_user(engine, config, "ana", budget=500, funds=2000, github="1", claim=False)
    bo = make_user(engine, config, "bo", budget=200, funds=300, github="2")
    with engine.begin() as conn:
        set_password(conn, ana, PASSWORD)
        set_password(conn, bo, PASSWORD)
    feed(engine,
         star("1", "r1", "2", f"{m1}-03T10:00:00"), star("1", "r2", "2", f"{m1}-04T10:00:00"),
         star("1", "r3", "3", f"{m1}-05T10:00:00"), star("1", "r4", "2", f"{m1}-06T10:00:00"),
         star("1", "r1", "2", f"{m1}-09T10:00:00"))
    settle(engine, m1, config.money)
    feed(engine, star("1", "r5", "2", f"{m2}-02T10:00:00"),
         star("1", "r9", "4", f"{m2}-03T10:00:00"))
    settle(engine, m2, config.money)
    feed(engine,
         star("1", "r6", "2", f"{now}-01T00:00:01"), star("1", "r7", "3", f"{now}-01T00:00:02"),
         star("1", "r8", "2", f"{now}-01T00:00:03"))
    feed(engine, star("1", "r8", "2", f"{now}-01T00:00:04", kind="unlike"))
    return Scenario(m1, m2, now, ana, bo)


def join_as_owner_of_github_3(engine: Engine, config: Settings, name: str = "cy", *,
                              budget: int = 200, funds: int = 200, also: str | None = None
                              ) -> int:
    """Someone joins and claims GitHub identity 3 (and `also`), with a password login."""
    uid = make_user(engine, config, name, budget=budget, funds=funds, github="3")
    with engine.begin() as conn:
        set_password(conn, uid, PASSWORD)
        if also:
            identities.link(conn, uid, "github", also, claim=True)
    return uid
