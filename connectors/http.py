"""Webhook routes that a plain signed POST can't express, added to the hub's application:

- `GET /webhooks/x?crc_token=…`: X's challenge-response check (answered from the secret alone).
- `POST /webhooks/discord`: Discord interactions, which must be answered synchronously with a
  JSON body that depends on the ledger (the event is ingested in the request).
- `POST /webhooks/stripe`: Stripe payments, credited in the request (`connectors.stripe`).

Each answers 404 while its connector is off. Verification runs on the raw bytes first; a
failure is 401 (Stripe's: 400, the status Stripe's documentation asks for) and changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy import Engine

from connectors import discord, stripe, x
from connectors.base import PayloadError, SignatureError, parse_json
from hub.intake import Rejected

CONFIG = web.AppKey("platform_config", dict)
ENGINE = web.AppKey("platform_engine", Engine)

log = structlog.get_logger(__name__)


def add_platform_routes(app: web.Application, config: Mapping[str, Any], engine: Engine) -> None:
    """Register the routes; call before the generic `POST /webhooks/{platform}` route.
    Raises ValueError naming a key whose value is unusable (never the value)."""
    if discord.enabled(config):
        try:
            discord.VERIFIER.check_settings(config["connectors"]["discord"])
        except ValueError as exc:
            raise ValueError(f"connectors.discord.{exc}") from None
    app[CONFIG] = dict(config)
    app[ENGINE] = engine
    app.router.add_get("/webhooks/x", x_crc)
    app.router.add_post("/webhooks/discord", discord_interaction)
    app.router.add_post("/webhooks/stripe", stripe.webhook_handler(config, engine))


async def x_crc(request: web.Request) -> web.Response:
    settings = request.app[CONFIG]["connectors"]["x"]
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
        discord.VERIFIER.verify(config["connectors"]["discord"], body, request.headers)
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
