"""The hub's one domain operation: accept a webhook delivery for a platform.

Order matters and is the contract: find the (enabled) connector, verify the raw bytes, parse
and normalise, store durably (group commit into the inbox), and only then answer 2xx. A
request refused at any step changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from base import metrics
from base.config import Settings
from connectors.base import Headers, PayloadError, SignatureError, WebhookConnector
from hub.committer import GroupCommit
from pipeline.inbox import Entry

log = structlog.get_logger(__name__)


class Rejected(Exception):
    """A request refused with an HTTP status and an OAuth-style JSON error."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Intake:
    config: Settings
    connectors: Mapping[str, WebhookConnector]
    committer: GroupCommit[Entry]

    async def receive(self, platform: str, body: bytes, headers: Headers,
                      request_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for a delivery: the connector's `accepted_status` (202, or 200
        for X) when events were stored, 200 when the delivery carried none (a ping). Raises
        Rejected for requests that must change nothing. The hub's `request_id` is stored with
        the events, for the worker's log."""
        metrics.webhook_received(platform)
        connector = self.connectors.get(platform)
        if connector is None:
            metrics.webhook_rejected(platform, "unknown_platform")
            raise Rejected(404, "not_found", "no webhook connector is enabled for this platform")
        try:
            events, reply = connector.accept(self.config, body, headers)
        except SignatureError as exc:
            log.info("webhook_rejected", platform=platform, reason=str(exc))
            metrics.webhook_rejected(platform, "signature")
            raise Rejected(401, "invalid_signature", str(exc)) from None
        except PayloadError as exc:
            metrics.webhook_rejected(platform, "payload")
            raise Rejected(400, "invalid_request", str(exc)) from None
        metrics.webhook_verified(platform)
        if not events:
            return 200, reply
        delivery = connector.delivery_id(headers)
        try:
            await self.committer.submit([Entry(event, delivery, request_id) for event in events])
        except Exception as exc:
            log.error("inbox_unavailable", platform=platform, error=exc.__class__.__name__)
            metrics.webhook_rejected(platform, "unavailable")
            raise Rejected(503, "temporarily_unavailable",
                           "the event could not be stored; retry later") from None
        return connector.accepted_status, reply
