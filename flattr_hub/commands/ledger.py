"""Ledger commands: users, linking, budgets, funds, event import, settlement, statements,
balances, the self-check, and migrations."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from base.errors import UserError
from flattr_hub.commands import add_command, amount, month, usage
from flattr_hub.commands.members import register_user_actions
from ledger import accounts, identities
from ledger.events import NormalisedEvent
from ledger.ingest import ingest
from ledger.settlement import settle
from ledger.statement import statement
from ledger.statement_csv import write_statement_csv
from ledger.verify import verify_snapshot
from members.claims import claim_identity

IMPORT_BATCH = 1000


def register(commands: Any) -> None:
    user = add_command(commands, "user", "manage users",
                       usage("user {create,password,operator} NAME"))
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION")
    create = add_command(user_commands, "create", "create a user", _user_create)
    create.add_argument("name")
    register_user_actions(user_commands)

    link = add_command(commands, "link", "link a platform identity to a user (what OAuth "
                       "linking does); --claim also claims it as the user's own", _link)
    link.add_argument("name")
    link.add_argument("platform")
    link.add_argument("platform_user_id")
    link.add_argument("--claim", action="store_true", help="also claim the identity")

    budget = add_command(commands, "budget", "manage budgets", usage("budget set NAME AMOUNT"))
    budget_set = add_command(budget.add_subparsers(metavar="ACTION"), "set",
                             "set a user's monthly budget in minor units", _budget_set)
    budget_set.add_argument("name")
    budget_set.add_argument("amount", type=amount)

    funds = add_command(commands, "funds", "manage funds",
                        usage("funds credit NAME AMOUNT --reason TEXT"))
    credit = add_command(funds.add_subparsers(metavar="ACTION"), "credit",
                         "credit a user's funds (operator)", _funds_credit)
    credit.add_argument("name")
    credit.add_argument("amount", type=amount)
    credit.add_argument("--reason", required=True)
    credit.add_argument("--key", help="idempotency key (default: derived from the arguments)")

    events = add_command(commands, "events", "normalised events", usage("events import FILE"))
    imp = add_command(events.add_subparsers(metavar="ACTION"), "import",
                      "import normalised events from a JSON Lines file ('-' for stdin)", _import)
    imp.add_argument("file")

    settle_cmd = add_command(commands, "settle", "settle a month that has ended", _settle)
    settle_cmd.add_argument("month", type=month, metavar="YYYY-MM")

    balance = add_command(commands, "balance", "a user's funds and revenue", _balance)
    balance.add_argument("name")
    balance.add_argument("--json", action="store_true", help="print JSON")

    stmt = add_command(commands, "statement", "a user's statement for a month", _statement)
    stmt.add_argument("name")
    stmt.add_argument("month", type=month, metavar="YYYY-MM")
    form = stmt.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="print CSV")
    form.add_argument("--json", action="store_true", help="print JSON")

    ledger = add_command(commands, "ledger", "ledger maintenance", usage("ledger verify"))
    add_command(ledger.add_subparsers(metavar="ACTION"), "verify",
                "check every invariant of the ledger; exit 1 naming what broke", _verify)

    db = add_command(commands, "db", "database maintenance", usage("db upgrade"))
    add_command(db.add_subparsers(metavar="ACTION"), "upgrade",
                "migrate the database to the newest schema", _db_upgrade)


def _user_create(args: argparse.Namespace, app: Any) -> int:
    with app.engine.begin() as conn:
        uid = accounts.create_user(conn, args.name)
    print(f"created user {args.name} (id {uid})")
    return 0


def _link(args: argparse.Namespace, app: Any) -> int:
    with app.engine.begin() as conn:
        uid = accounts.user_id(conn, args.name)
        if args.claim:
            claim_identity(conn, uid, args.platform, args.platform_user_id, contest=False)
        else:
            identities.link(conn, uid, args.platform, args.platform_user_id)
    what = "linked and claimed" if args.claim else "linked"
    print(f"{what} {args.platform} identity {args.platform_user_id} for {args.name}")
    return 0


def _budget_set(args: argparse.Namespace, app: Any) -> int:
    with app.engine.begin() as conn:
        accounts.set_budget(conn, accounts.user_id(conn, args.name), args.amount, app.config.money)
    print(f"budget of {args.name} is {args.amount}")
    return 0


def _funds_credit(args: argparse.Namespace, app: Any) -> int:
    maximum = app.config.payments.max_credit
    if args.amount > maximum:
        raise UserError(f"amount {args.amount} is above payments.max_credit ({maximum})")
    key = args.key or f"cli:{args.name}:{args.amount}:{args.reason}"
    with app.engine.begin() as conn:
        moved = accounts.credit_funds(conn, accounts.user_id(conn, args.name), args.amount,
                                      args.reason, key, provider="operator")
    print(f"credited {args.amount} to {args.name}" if moved else
          f"already credited (idempotency key {key})")
    return 0


def _read_events(path: str) -> list[NormalisedEvent]:
    try:
        stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    parsed = []
    with stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                parsed.append(NormalisedEvent.from_dict(json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise UserError(f"{path} line {number}: {exc}") from None
    return parsed


def _import(args: argparse.Namespace, app: Any) -> int:
    parsed = _read_events(args.file)
    totals: dict[str, int] = {}
    with app.engine.begin() as conn:
        for start in range(0, len(parsed), IMPORT_BATCH):
            for outcome, count in ingest(conn, parsed[start:start + IMPORT_BATCH]).counts.items():
                totals[outcome] = totals.get(outcome, 0) + count
    summary = ", ".join(f"{name} {count}" for name, count in sorted(totals.items()) if count)
    print(f"imported {len(parsed)} events: {summary or 'nothing new'}")
    return 0


def _settle(args: argparse.Namespace, app: Any) -> int:
    if sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"settling {args.month}", total=None)
            result = settle(app.engine, args.month, app.config.money,
                            progress=lambda done, total: bar.update(task, completed=done,
                                                                    total=total))
    else:
        result = settle(app.engine, args.month, app.config.money)
    if result.already_done:
        print(f"{args.month} was already settled: nothing changed")
    else:
        print(f"settled {args.month}: {result.givers} givers, {result.flattrs} flattrs, "
              f"{result.amount} distributed, {result.fees} fees")
    return 0


def _balance(args: argparse.Namespace, app: Any) -> int:
    with app.engine.connect() as conn:
        held = accounts.balances(conn, accounts.user_id(conn, args.name))
    if args.json:
        print(json.dumps({"funds": held["funds"], "revenue": held["revenue"]}))
    else:
        print(f"{args.name}: funds {held['funds']}, revenue {held['revenue']} "
              f"({app.config.currency} minor units)")
    return 0


def _statement(args: argparse.Namespace, app: Any) -> int:
    with app.engine.connect() as conn:
        report = statement(conn, accounts.user_id(conn, args.name), args.month, app.config.money)
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.csv:
        write_statement_csv(report, sys.stdout)
    else:
        print_statement(args.name, report, app.config.currency)
    return 0


def print_statement(name: str, report: dict[str, Any], currency: str) -> None:
    """Print a statement as text for a terminal."""
    state = "settled" if report["settled"] else "not settled yet"
    print(f"Statement of {name} for {report['month']} ({state}; amounts in {currency} cents)")
    if report["funded"] is not None:
        print(f"  amount to distribute A = {report['amount']}"
              + ("" if report["funded"] else " (unfunded: below the monthly minimum)"))
    print("Given:")
    for g in report["given"]:
        late = " late" if g["late"] else ""
        money = (f"share {g['share']:>6} fee {g['fee']:>5} net {g['net']:>6}"
                 if "estimate" not in g else f"estimated share {g['estimate']:>6}")
        print(f"  {g['occurred_at'][:10]} {g['platform']}:{g['content_id']:<20} "
              f"{g['status']:<16}{late} {money}")
    print("Pledges waiting:")
    for p in report["pledges_waiting"]:
        print(f"  {p['month']} {p['platform']}:{p['content_id']} for {p['owner']}")
    print("Received:")
    for r in report["received"]:
        print(f"  from {r['giver']:<12} {r['platform']}:{r['content_id']:<20} "
              f"share {r['share']:>6} fee {r['fee']:>5} net {r['net']:>6}")
    t = report["totals"]
    print(f"Totals: given {t['given']} (fees {t['fees']}), received net {t['received_net']}")


def _verify(_args: argparse.Namespace, app: Any) -> int:
    with app.engine.connect() as conn:
        problems = verify_snapshot(conn)
    if problems:
        print(f"ledger verify: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("ledger verify: all invariants hold")
    return 0


def _db_upgrade(_args: argparse.Namespace, app: Any) -> int:
    app.engine  # noqa: B018 - making the engine runs the migrations
    print("database is at the newest schema")
    return 0
