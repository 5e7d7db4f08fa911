"""Money in and out for the operator: payouts (list, export a SEPA batch, mark paid or failed)
and provider payments that credited nobody (list, assign to a user)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from base.errors import UserError
from flattr_hub.commands import add_command, usage
from ledger import accounts, payments, payouts
from ledger.money_schema import PAYOUT_STATES


def register(commands: Any) -> None:
    group = add_command(commands, "payouts", "payouts of revenue to bank accounts",
                        usage("payouts {list,export,paid,failed}"))
    actions = group.add_subparsers(metavar="ACTION")
    listing = add_command(actions, "list", "payouts, oldest first (all, or in one state)", _list)
    listing.add_argument("--state", choices=PAYOUT_STATES)
    listing.add_argument("--json", action="store_true", help="print JSON Lines")
    export = add_command(actions, "export", "write every requested payout into a new SEPA "
                         "credit transfer file (pain.001.001.03); they become exported", _export)
    export.add_argument("--out", required=True, metavar="FILE", help="where to write the XML")
    export.add_argument("--batch", type=int, metavar="ID",
                        help="write the file of an already exported batch instead")
    paid = add_command(actions, "paid", "the bank paid an exported payout", _paid)
    paid.add_argument("id", type=int)
    failed = add_command(actions, "failed", "a payout could not be made: its amount goes back "
                         "to the member's revenue", _failed)
    failed.add_argument("id", type=int)

    group = add_command(commands, "payments", "provider payments that credited nobody",
                        usage("payments {unmatched,assign}"))
    actions = group.add_subparsers(metavar="ACTION")
    add_command(actions, "unmatched", "payments that arrived but named no known user",
                _unmatched)
    assign = add_command(actions, "assign", "credit an unmatched payment to a user's funds",
                         _assign)
    assign.add_argument("payment_id", help="the provider's id (Stripe: the cs_… session id)")
    assign.add_argument("name")
    assign.add_argument("--provider", default="stripe")


def _list(args: argparse.Namespace, app: Any) -> int:
    with app.engine.connect() as conn:
        rows = payouts.list_payouts(conn, args.state)
    for row in rows:
        if args.json:
            print(json.dumps({"id": row.id, "user": row.user, "amount": row.amount,
                              "state": row.state, "holder_name": row.holder_name,
                              "iban": row.iban, "bic": row.bic, "batch": row.batch_id,
                              "requested_at": row.requested_at.isoformat()}))
        else:
            print(f"{row.id}\t{row.state}\t{row.user}\t{row.amount}\t{row.holder_name}\t"
                  f"{row.iban}\t{row.bic or '-'}\t{row.batch_id or '-'}")
    return 0


def _export(args: argparse.Namespace, app: Any) -> int:
    out = Path(args.out)
    with app.engine.begin() as conn:
        if args.batch is None:
            batch = payouts.export_batch(conn, app.config.money, app.config.debtor,
                                         datetime.now(UTC).date())
            batch_id, summary = batch.id, f"{batch.payouts} payouts, total {batch.total}"
        else:
            batch_id, summary = args.batch, "again"
        _write(out, payouts.batch_file(conn, batch_id))
    print(f"wrote batch {batch_id} ({summary}) to {out}")
    return 0


def _write(out: Path, xml: bytes) -> None:
    """Write the file inside the transaction: if it can not be written, nothing is exported."""
    try:
        out.write_bytes(xml)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None


def _paid(args: argparse.Namespace, app: Any) -> int:
    with app.engine.begin() as conn:
        changed = payouts.mark_paid(conn, args.id)
    print(f"payout {args.id} marked paid" if changed else f"payout {args.id} was already paid")
    return 0


def _failed(args: argparse.Namespace, app: Any) -> int:
    with app.engine.begin() as conn:
        changed = payouts.mark_failed(conn, args.id)
    print(f"payout {args.id} marked failed; its amount is back in revenue" if changed
          else f"payout {args.id} was already failed")
    return 0


def _unmatched(_args: argparse.Namespace, app: Any) -> int:
    with app.engine.connect() as conn:
        for row in payments.unmatched_payments(conn):
            print(f"{row.provider}\t{row.payment_id}\t{row.amount}\t{row.currency}\t"
                  f"{row.reference or '-'}\t{row.problem}")
    return 0


def _assign(args: argparse.Namespace, app: Any) -> int:
    with app.engine.begin() as conn:
        payments.assign_payment(conn, args.provider, args.payment_id,
                                accounts.user_id(conn, args.name), app.config.currency)
    print(f"credited {args.provider} payment {args.payment_id} to {args.name}")
    return 0
