"""`flattr-hub demo`: the worked example of the money rules, settled end to end on a fresh
embedded database, with each statement printed. A newcomer's first look at the ledger."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from base.config import data_dir
from base.db import upgrade
from flattr_hub.commands import add_command
from flattr_hub.commands.ledger import print_statement
from ledger import accounts, identities
from ledger.db import make_engine
from ledger.errors import NotFound
from ledger.events import NormalisedEvent
from ledger.ingest import ingest
from ledger.settlement import settle
from ledger.statement import statement
from ledger.verify import verify

MONTHS = {
    "2026-06": [("r1", "bo", "03"), ("r2", "bo", "04"), ("r3", "cy", "05"), ("r4", "bo", "06"),
                ("r1", "bo", "09")],
    "2026-07": [("r5", "bo", "02")],
}
OWNER_IDS = {"bo": "2", "cy": "3"}


def register(commands: Any) -> None:
    add_command(commands, "demo", "settle the money rules' worked example (June and July) on a "
                "fresh demo database and print the statements", run_demo)


def run_demo(_args: argparse.Namespace, app: Any) -> int:
    path = data_dir(app.config) / "demo.sqlite3"
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    config = app.config
    with engine.begin() as conn:
        ana = accounts.create_user(conn, "ana")
        accounts.set_budget(conn, ana, 500, config.money)
        accounts.credit_funds(conn, ana, 2000, "demo", "demo:ana")
        identities.link(conn, ana, "github", "1")
        bo = accounts.create_user(conn, "bo")
        accounts.set_budget(conn, bo, 200, config.money)
        accounts.credit_funds(conn, bo, 300, "demo", "demo:bo")
        identities.link(conn, bo, "github", "2", claim=True)
    print(f"demo database: {path}")
    print("Ana (budget 500, funds 2000) and Bo (budget 200, funds 300, GitHub identity 2) join;"
          " Cy (GitHub identity 3) has not.")
    for month, stars in MONTHS.items():
        if month == "2026-07":
            with engine.begin() as conn:
                cy = accounts.create_user(conn, "cy")
                accounts.set_budget(conn, cy, 200, config.money)
                accounts.credit_funds(conn, cy, 200, "demo", "demo:cy")
                identities.link(conn, cy, "github", "3", claim=True)
            print("\nCy joins and claims GitHub identity 3.")
        batch = [
            NormalisedEvent(event_id=f"demo-{month}-{n}", platform="github", kind="like",
                            actor_id="1", content_id=repo, owner_id=OWNER_IDS[owner],
                            occurred_at=datetime.fromisoformat(f"{month}-{day}T12:00:00"))
            for n, (repo, owner, day) in enumerate(stars)
        ]
        with engine.begin() as conn:
            ingest(conn, batch)
        print(f"\nAna stars {', '.join(repo for repo, _, _ in stars)} in {month}; settling.")
        settle(engine, month, config.money)
        with engine.connect() as conn:
            for name in ("ana", "bo", "cy"):
                try:
                    uid = accounts.user_id(conn, name)
                except NotFound:
                    continue
                print_statement(name, statement(conn, uid, month, config.money),
                                config.currency)
    with engine.connect() as conn:
        for name in ("ana", "bo", "cy"):
            held = accounts.balances(conn, accounts.user_id(conn, name))
            print(f"{name}: funds {held['funds']}, revenue {held['revenue']}")
        problems = verify(conn)
    print("ledger verify: " + ("all invariants hold" if not problems else "; ".join(problems)))
    engine.dispose()
    return 1 if problems else 0
