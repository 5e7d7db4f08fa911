"""The tables of money in and out (in the ledger's metadata, created by migration 0007).

- `provider_payments`: every payment a provider reported (one row per Stripe Checkout
  Session): `credited` to the user it names, or `unmatched` (it names no user we know, or a
  currency the hub does not keep) and waiting for an operator, with the `problem` in words.
- `payout_details`: where a user's payouts go (account holder, IBAN, optional BIC).
- `payouts`: a withdrawal of revenue. `requested` (the amount already left revenue for
  `pending_payouts:sepa`), `exported` in a SEPA batch, then `paid` (to `payouts:sepa`) or
  `failed` (back to revenue). The account details are copied at request time, so changing
  them later does not redirect a payout already asked for.
- `payout_batches`: each exported SEPA credit transfer file, kept byte for byte so that it
  can be downloaded again.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from ledger.schema import Id, Money, _fk, metadata

PAYOUT_STATES = ("requested", "exported", "paid", "failed")

provider_payments = Table(
    "provider_payments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("payment_id", String(255), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("reference", String(255), nullable=True),
    Column("user_id", Id, _fk("users"), nullable=True),
    Column("amount", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("state", String(16), nullable=False),
    Column("problem", String(255), nullable=True),
    Column("received_at", DateTime, nullable=False),
    UniqueConstraint("provider", "payment_id", name="uq_provider_payments_payment"),
    CheckConstraint("state IN ('credited', 'unmatched')", name="state"),
    CheckConstraint("(state = 'credited') = (user_id IS NOT NULL)", name="credited_user"),
    CheckConstraint("(state = 'unmatched') = (problem IS NOT NULL)", name="unmatched_problem"),
    CheckConstraint("amount >= 0", name="amount_not_negative"),
)

payout_details = Table(
    "payout_details",
    metadata,
    Column("user_id", Id, _fk("users"), primary_key=True),
    Column("holder_name", String(70), nullable=False),
    Column("iban", String(34), nullable=False),
    Column("bic", String(11), nullable=True),
    Column("updated_at", DateTime, nullable=False),
)

payout_batches = Table(
    "payout_batches",
    metadata,
    Column("id", Id, primary_key=True),
    Column("message_id", String(35), nullable=False, unique=True),
    Column("payouts", Integer, nullable=False),
    Column("total", Money, nullable=False),
    Column("xml", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("payouts > 0 AND total > 0", name="not_empty"),
)

payouts = Table(
    "payouts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, _fk("users"), nullable=False),
    Column("amount", Money, nullable=False),
    Column("state", String(16), nullable=False, server_default=text("'requested'")),
    Column("holder_name", String(70), nullable=False),
    Column("iban", String(34), nullable=False),
    Column("bic", String(11), nullable=True),
    Column("request_key", String(200), nullable=False, unique=True),
    Column("batch_id", Id, _fk("payout_batches"), nullable=True),
    Column("requested_at", DateTime, nullable=False),
    Column("exported_at", DateTime, nullable=True),
    Column("settled_at", DateTime, nullable=True),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("state IN ('requested', 'exported', 'paid', 'failed')", name="state"),
    CheckConstraint("(batch_id IS NULL) = (exported_at IS NULL)", name="batch_has_time"),
    CheckConstraint("state NOT IN ('exported', 'paid') OR batch_id IS NOT NULL",
                    name="exported_in_batch"),
    CheckConstraint("state <> 'requested' OR batch_id IS NULL", name="requested_not_exported"),
    CheckConstraint("(state IN ('paid', 'failed')) = (settled_at IS NOT NULL)", name="settled"),
    Index("ix_payouts_state", "state"),
    Index("ix_payouts_user", "user_id"),
)
