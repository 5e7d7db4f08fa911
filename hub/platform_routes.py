"""Webhook routes that a plain signed POST can't express, added to the hub's application:

- `GET /webhooks/x?crc_token=…`: X's challenge-response check (answered from the secret alone).
- `POST /webhooks/discord`: Discord interactions, which must be answered synchronously with a
  JSON body that depends on the ledger (the event is ingested in the request).
- `POST /webhooks/stripe`: Stripe payments, credited in the request (`stripe_handler`; the
  verification is `connectors.stripe`).

Each answers 404 while its connector is off. Verification runs on the raw bytes first; a
failure is 401 (Stripe's: 400, the status Stripe's documentation asks for) and changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from base import metrics
from base.config import Settings
from connectors import discord, stripe, x
from connectors.base import PayloadError, SignatureError, parse_json
from hub.intake import Rejected
from ledger.payments import ProviderPayment, record_payment

CONFIG = web.AppKey("platform_config", Settings)
ENGINE = web.AppKey("platform_engine", Engine)

log = structlog.get_logger(__name__)


def add_platform_routes(app: web.Application, config: Settings, engine: Engine) -> None:
    """Register the routes; call before the generic `POST /webhooks/{platform}` route.
    Raises ValueError naming a key whose value is unusable (never the value)."""
    if discord.enabled(config):
        try:
            discord.VERIFIER.check_settings(discord.PLATFORM.section(config))
        except ValueError as exc:
            raise ValueError(f"connectors.discord.{exc}") from None
    app[CONFIG] = config
    app[ENGINE] = engine
    app.router.add_get("/webhooks/x", x_crc)
    app.router.add_post("/webhooks/discord", discord_interaction)
    app.router.add_post("/webhooks/stripe", stripe_handler(config, engine))


async def x_crc(request: web.Request) -> web.Response:
    settings = x.PLATFORM.section(request.app[CONFIG])
    if not x.CONNECTOR.enabled(request.app[CONFIG]):
        raise Rejected(404, "not_found", "no webhook connector is enabled for this platform")
    try:
        return web.json_response(x.crc_response(settings, request.query.get("crc_token", "")))
    except PayloadError as exc:
        raise Rejected(400, "invalid_request", str(exc)) from None


async def discord_interaction(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    if not discord.enabled(config):
        raise Rejected(404, "not_found", "no webhook connector is enabled for this platform")
    body = await request.read()
    try:
        discord.VERIFIER.verify(discord.PLATFORM.section(config), body, request.headers)
        payload = parse_json(body)
    except SignatureError as exc:
        log.info("webhook_rejected", platform="discord", reason=str(exc))
        raise Rejected(401, "invalid_signature", str(exc)) from None
    except PayloadError as exc:
        raise Rejected(400, "invalid_request", str(exc)) from None
    loop = asyncio.get_running_loop()
    try:
        reply = await asyncio.wait_for(loop.run_in_executor(
            None, discord.answer, request.app[ENGINE], config, payload), timeout=2.5)
    except PayloadError as exc:
        raise Rejected(400, "invalid_request", str(exc)) from None
    except TimeoutError:
        reply = discord.ephemeral("The hub is busy; try again in a moment.")
    return web.json_response(reply)


def stripe_handler(config: Settings,
                    engine: Engine) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The `POST /webhooks/stripe` handler (404 while `payments.stripe.webhook_secret` is
    unset)."""
    currency = config.currency
    maximum = config.payments.max_funding

    def record(payment: ProviderPayment) -> str:
        with engine.begin() as conn:
            return record_payment(conn, payment, currency, maximum)

    async def handle(request: web.Request) -> web.Response:
        metrics.webhook_received(stripe.PLATFORM)
        if not stripe.webhook_enabled(config):
            metrics.webhook_rejected(stripe.PLATFORM, "unknown_platform")
            raise Rejected(404, "not_found", "no webhook connector is enabled for this platform")
        body = await request.read()
        try:
            payment = stripe.parse_event(stripe.settings_of(config), body, request.headers.get(
                "Stripe-Signature"))
        except SignatureError as exc:
            log.info("webhook_rejected", platform=stripe.PLATFORM, reason=str(exc))
            metrics.webhook_rejected(stripe.PLATFORM, "signature")
            raise Rejected(400, "invalid_signature", str(exc)) from None
        except PayloadError as exc:
            metrics.webhook_rejected(stripe.PLATFORM, "payload")
            raise Rejected(400, "invalid_request", str(exc)) from None
        metrics.webhook_verified(stripe.PLATFORM)
        if payment is None:
            return web.json_response({"received": True, "result": "ignored"})
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, record, payment)
        except SQLAlchemyError as exc:
            log.error("payment_unrecorded", platform=stripe.PLATFORM, error=exc.__class__.__name__)
            metrics.webhook_rejected(stripe.PLATFORM, "unavailable")
            raise Rejected(503, "temporarily_unavailable",
                           "the payment could not be recorded; retry later") from None
        log_event = log.warning if result == "unmatched" else log.info
        log_event("stripe_payment", result=result, session_id=payment.payment_id,
                  event_id=payment.event_id, amount=payment.amount)
        return web.json_response({"received": True, "result": result})

    return handle
