"""GitHub stars: `star` webhooks (`created` → like, `deleted` → unlike), signed with
`X-Hub-Signature-256` and deduplicated on `X-GitHub-Delivery`. `ping` and other events are
answered 2xx and record nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.base import Headers, HmacSha256Hex, PayloadError, WebhookConnector, event, field_of
from ledger.events import NormalisedEvent

KINDS = {"created": "like", "deleted": "unlike"}


def normalise(payload: Any, headers: Headers) -> list[NormalisedEvent]:
    if headers.get("X-GitHub-Event", "") != "star":
        return []
    delivery = headers.get("X-GitHub-Delivery", "")
    if not delivery:
        raise PayloadError("missing X-GitHub-Delivery header")
    action = field_of(payload, "action")
    if not isinstance(action, str) or action not in KINDS:
        raise PayloadError("star action must be created or deleted")
    repository = field_of(payload, "repository")
    return [event(
        event_id=delivery,
        platform="github",
        kind=KINDS[action],
        actor_id=field_of(payload, "sender", "id"),
        content_id=field_of(payload, "repository", "id"),
        owner_id=field_of(payload, "repository", "owner", "id"),
        occurred_at=payload.get("starred_at") or datetime.now(UTC),
        url=repository.get("html_url") or _url(repository),
        title=repository.get("full_name") or repository.get("name"),
    )]


def _url(repository: dict[str, Any]) -> str | None:
    name = repository.get("full_name")
    return f"https://github.com/{name}" if isinstance(name, str) and name else None


CONNECTOR = WebhookConnector(
    name="github",
    verifier=HmacSha256Hex(header="X-Hub-Signature-256", secret_key="webhook_secret"),
    normalise=normalise,
    config_keys=("webhook_secret",),
    delivery_header="X-GitHub-Delivery",
)
