"""Money in from payment providers: a payment a provider reported is credited to the funds of
the user it names, exactly once per payment, from `incoming:<provider>`.

A payment is one Stripe Checkout Session. Its idempotency key is the session, not the event
that reported it: Stripe reports one session by several events (`checkout.session.completed`,
then `checkout.session.async_payment_succeeded` for delayed methods) and may deliver each of
them more than once, so keying on the session credits it once whichever arrive. A payment that
names no user we know (or another currency) is kept as `unmatched` for an operator to assign:
the money arrived, so it must not be lost, and refusing the webhook would only make Stripe retry
for days a delivery that can never succeed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from ledger.accounts import credit_funds
from ledger.errors import LedgerError, NotFound
from ledger.money_schema import provider_payments
from ledger.schema import users
from ledger.sql import dialect_insert, utcnow


@dataclass(frozen=True, slots=True)
class ProviderPayment:
    """A payment as the provider reported it; `reference` is the user name it carries."""

    provider: str
    payment_id: str
    event_id: str
    reference: str | None
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class UnmatchedPayment:
    provider: str
    payment_id: str
    reference: str | None
    amount: int
    currency: str
    problem: str


def payment_key(provider: str, payment_id: str) -> str:
    return f"{provider}:checkout:{payment_id}"


def record_payment(conn: Connection, payment: ProviderPayment, currency: str,
                   maximum: int | None = None) -> str:
    """Credit `payment` to the user it names: `credited`, `duplicate` (this payment was
    recorded before; nothing moves), or `unmatched` (kept for an operator; nothing moves).
    A payment above `maximum` is unmatched too: an operator looks at it before anything is
    credited."""
    uid = None
    if payment.reference:
        uid = conn.execute(select(users.c.id).where(users.c.name == payment.reference)).scalar()
    problem = _problem(payment, uid, currency)
    if problem is None and maximum is not None and payment.amount > maximum:
        problem = f"{payment.amount} is above the maximum of {maximum} for one payment"
    stored = conn.execute(
        dialect_insert(conn, provider_payments).values(
            provider=payment.provider, payment_id=payment.payment_id, event_id=payment.event_id,
            reference=payment.reference, user_id=None if problem else uid,
            amount=payment.amount, currency=payment.currency.upper(),
            state="unmatched" if problem else "credited", problem=problem,
            received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["provider", "payment_id"])
        .returning(provider_payments.c.id)
    ).scalar()
    if stored is None:
        return "duplicate"
    if problem or uid is None:
        return "unmatched"
    credit_funds(conn, uid, payment.amount, f"{payment.provider} payment {payment.payment_id}",
                 payment_key(payment.provider, payment.payment_id), provider=payment.provider)
    return "credited"


def unmatched_payments(conn: Connection) -> list[UnmatchedPayment]:
    """Payments that arrived but credited nobody, oldest first."""
    rows = conn.execute(
        select(provider_payments.c.provider, provider_payments.c.payment_id,
               provider_payments.c.reference, provider_payments.c.amount,
               provider_payments.c.currency, provider_payments.c.problem)
        .where(provider_payments.c.state == "unmatched").order_by(provider_payments.c.id)
    ).all()
    return [UnmatchedPayment(*row) for row in rows]


def assign_payment(conn: Connection, provider: str, payment_id: str, uid: int,
                   currency: str) -> None:
    """An operator credits an unmatched payment to user `uid` (same key as an automatic credit,
    so it can happen only once)."""
    row = conn.execute(
        select(provider_payments.c.id, provider_payments.c.state, provider_payments.c.amount,
               provider_payments.c.currency)
        .where(provider_payments.c.provider == provider,
               provider_payments.c.payment_id == payment_id)
        .with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"no {provider} payment {payment_id}")
    if row.state != "unmatched":
        raise LedgerError(f"{provider} payment {payment_id} was already credited")
    if row.currency != currency.upper() or row.amount <= 0:
        raise LedgerError(f"{provider} payment {payment_id} is {row.amount} {row.currency}: "
                          "only a positive amount in the hub's currency can be credited")
    credit_funds(conn, uid, row.amount, f"{provider} payment {payment_id} (assigned)",
                 payment_key(provider, payment_id), provider=provider)
    conn.execute(update(provider_payments).where(provider_payments.c.id == row.id)
                 .values(state="credited", user_id=uid, problem=None))


def _problem(payment: ProviderPayment, uid: int | None, currency: str) -> str | None:
    if payment.currency.upper() != currency.upper():
        return f"paid in {payment.currency.upper()}, the hub keeps {currency.upper()}"
    if payment.amount <= 0:
        return "nothing was paid"
    if not payment.reference:
        return "names no user"
    if uid is None:
        return f"names user {payment.reference[:64]}, who does not exist"
    return None
