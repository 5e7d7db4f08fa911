"""The generic relay: any platform's like or unlike, posted as a normalised event (without
`event_id`) and signed with Standard Webhooks; the event id is the `webhook-id` header.
SoundCloud relays use it, since SoundCloud has no webhooks. The body's `type` (or `kind`) is
`like` or `unlike`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Headers, PayloadError, StandardWebhooks, WebhookConnector, event
from connectors.platform import Platform
from ledger.events import NormalisedEvent

FIELDS = ("platform", "actor_id", "content_id", "owner_id", "occurred_at", "url", "title")


def normalise(payload: Any, headers: Headers) -> list[NormalisedEvent]:
    if not isinstance(payload, Mapping):
        raise PayloadError("body must be a JSON object")
    return [event(
        event_id=headers.get("webhook-id", ""),
        kind=payload.get("type") or payload.get("kind"),
        **{name: payload.get(name) for name in FIELDS},
    )]


CONNECTOR = WebhookConnector(
    name="relay",
    verifier=StandardWebhooks(secret_key="secret"),
    normalise=normalise,
    config_keys=("secret",),
    delivery_header="webhook-id",
)


@dataclass(frozen=True)
class RelaySettings:
    """`connectors.relay`: the webhook is on with `secret` (a Standard Webhooks `whsec_`)."""

    secret: str = field(default="", repr=False)


PLATFORM = Platform(name="relay", display_name="Relay", settings=RelaySettings, webhook=CONNECTOR)
