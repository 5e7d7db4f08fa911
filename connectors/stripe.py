"""Stripe, money in: Checkout Sessions to add funds, and the verification of the webhook that
credits them.

Like the other connectors it verifies a platform's signed webhook on the raw bytes and turns the
platform's payload into the hub's own terms (a `ProviderPayment`); the HTTP handler is
`hub.platform_routes`. Unlike them it does not go through the inbox queue: money is credited in
the request, and Stripe gets its 2xx only after the credit is committed (else it retries, for
up to 3 days).

- `POST /webhooks/stripe`: `Stripe-Signature` checked by `stripe.Webhook.construct_event`
  (tolerance 300 s); a bad or stale signature is 400 and changes nothing. Funds are credited
  for `checkout.session.completed` with `payment_status == "paid"` and for
  `checkout.session.async_payment_succeeded`; every other event is answered 200 and ignored.
  A payment above `payments.max_funding` is held as unmatched for an operator, never
  credited; an amount beyond 64 bits is refused (400).
- `create_checkout`: a Checkout Session (`stripe.StripeClient`, whose API base is
  `payments.stripe.api_base` when set; the client is made per call instead of setting the
  library's process-wide `stripe.api_key` / `stripe.api_base`, so two configurations can not
  mix). The session carries the user name in `client_reference_id` (`user:<name>`) and in
  `metadata.user`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

import stripe
import structlog

from base.config import Settings, StripeSettings
from connectors.base import PayloadError, SignatureError
from ledger.payments import ProviderPayment

PLATFORM = "stripe"
INT64_MAX = 2**63 - 1
TOLERANCE = 300
CREDITING = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
TIMEOUT = 20

log = structlog.get_logger(__name__)


class CheckoutUnavailable(Exception):
    """Stripe did not make a Checkout Session. The message is safe to show to the user."""


def settings_of(config: Settings) -> StripeSettings:
    return config.payments.stripe


def webhook_enabled(config: Settings) -> bool:
    """The webhook is on when `payments.stripe.webhook_secret` is set."""
    return bool(settings_of(config).webhook_secret)


def checkout_enabled(config: Settings) -> bool:
    """Adding funds is on when both Stripe keys are set."""
    settings = settings_of(config)
    return bool(settings.secret_key) and webhook_enabled(config)


def parse_event(settings: StripeSettings, body: bytes,
                signature: str | None) -> ProviderPayment | None:
    """The payment a verified Stripe event reports, or None for an event that credits nothing.
    Raises SignatureError (nothing was parsed) or PayloadError."""
    try:
        event = stripe.Webhook.construct_event(
            body, signature, settings.webhook_secret, tolerance=TOLERANCE)
    except stripe.SignatureVerificationError as exc:
        raise SignatureError(_signature_problem(str(exc.user_message or exc))) from None
    except UnicodeDecodeError:
        raise SignatureError("signature does not match") from None
    except (ValueError, TypeError, AttributeError, RecursionError):
        # Raised only after the signature verified: the library could not read the JSON.
        raise PayloadError("body is not a Stripe event") from None
    return payment_of(event.to_dict())


def payment_of(event: Mapping[str, Any]) -> ProviderPayment | None:
    """The payment in a Stripe event (a plain dict), or None if it credits nothing."""
    kind = event.get("type")
    if kind not in CREDITING:
        return None
    data = event.get("data")
    session = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(session, Mapping) or session.get("object") != "checkout.session":
        raise PayloadError("data.object is not a checkout.session")
    if kind == "checkout.session.completed" and session.get("payment_status") != "paid":
        return None
    event_id, session_id = event.get("id"), session.get("id")
    amount, currency = session.get("amount_total"), session.get("currency")
    if not _text(event_id, 255) or not _text(session_id, 150):
        raise PayloadError("the event lacks an id or a session id")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= INT64_MAX:
        raise PayloadError("data.object.amount_total must be a whole number of minor units "
                           "within 64 bits")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise PayloadError("data.object.currency must be a 3-letter code")
    return ProviderPayment(PLATFORM, session_id, event_id, _reference(session), amount,
                           currency.upper())


def create_checkout(settings: StripeSettings, *, amount: int, currency: str, user: str,
                    success_url: str, cancel_url: str, idempotency_key: str) -> str:
    """Make a Checkout Session for adding `amount` to `user`'s funds; the URL to send the
    browser to. Raises CheckoutUnavailable."""
    base = settings.api_base
    client = stripe.StripeClient(
        settings.secret_key, base_addresses={"api": base} if base else None,
        max_network_retries=2, http_client=stripe.RequestsClient(timeout=TIMEOUT))
    try:
        session = client.v1.checkout.sessions.create(params={
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": currency.lower(), "unit_amount": amount,
                "product_data": {"name": "Flattr Hub funds"}}}],
            "client_reference_id": f"user:{user}",
            "metadata": {"user": user},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }, options={"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        log.error("stripe_checkout_failed", error=exc.__class__.__name__,
                  status=exc.http_status)
        raise CheckoutUnavailable("the payment provider is not available; try again later") \
            from None
    if not session.url:
        raise CheckoutUnavailable("the payment provider gave no payment page; try again later")
    return str(session.url)


def _signature_problem(message: str) -> str:
    if "No Stripe-Signature header" in message:
        return "missing Stripe-Signature header"
    if "tolerance" in message:
        return f"Stripe-Signature timestamp is more than {TOLERANCE} s old"
    if "Unable to extract" in message or "No signatures found with expected" in message:
        return "malformed Stripe-Signature header"
    return "signature does not match"


def _reference(session: Mapping[str, Any]) -> str | None:
    metadata = session.get("metadata") or {}
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    if not _text(user, 255):
        reference = session.get("client_reference_id")
        user = reference.removeprefix("user:") if _text(reference, 255) else None
    return user or None


def _text(value: Any, limit: int) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= limit
