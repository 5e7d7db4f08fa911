"""Signers for each platform's webhook and the configuration that turns every webhook on,
for the hostile-input tests (the hub itself: `tests.hostile_fixtures`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nacl.signing import SigningKey

from base.config import Settings, with_overrides
from hub.simulate import github_headers, standard_headers
from tests.fakes.stripe_api import signature_header
from tests.hub_helpers import GITHUB_SECRET, RELAY_SECRET

DISCORD_KEY = SigningKey(b"\x09" * 32)
X_SECRET = "x-consumer-secret-for-hostile-tests"
STRIPE_SECRET = "whsec_hostile_tests"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_github(body: bytes) -> dict[str, str]:
    return github_headers(GITHUB_SECRET, body, "star", str(uuid.uuid4()))


def sign_relay(body: bytes) -> dict[str, str]:
    return standard_headers(RELAY_SECRET, body, "msg_" + uuid.uuid4().hex)


def sign_discord(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"X-Signature-Ed25519": DISCORD_KEY.sign(stamp.encode() + body).signature.hex(),
            "X-Signature-Timestamp": stamp, "Content-Type": "application/json"}


def sign_x(body: bytes) -> dict[str, str]:
    mac = hmac.new(X_SECRET.encode(), body, hashlib.sha256).digest()
    return {"x-twitter-webhooks-signature": "sha256=" + base64.b64encode(mac).decode(),
            "Content-Type": "application/json"}


def sign_stripe(body: bytes) -> dict[str, str]:
    return {"Stripe-Signature": signature_header(body, STRIPE_SECRET),
            "Content-Type": "application/json"}


SIGNERS: dict[str, Callable[[bytes], dict[str, str]]] = {
    "github": sign_github, "relay": sign_relay, "discord": sign_discord, "x": sign_x,
    "stripe": sign_stripe}


@dataclass
class Hostile:
    client: Any
    csrf: str
    rest_token: str
    thing_id: int


def configure(config: Settings) -> Settings:
    """`config` with every webhook on; nothing that would reach outside this machine (no
    Stripe API key, no bot token, no SMTP server)."""
    return with_overrides(config, {
        "connectors.discord.public_key": DISCORD_KEY.verify_key.encode().hex(),
        "connectors.x.consumer_secret": X_SECRET,
        "payments.stripe.webhook_secret": STRIPE_SECRET, "hub.max_body_bytes": 65536})
