"""Signed webhook deliveries as platforms send them: used by `up --demo`, the benchmark and
the tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook


def github_star(secret: str, *, sender: int, repo: int, owner: int, action: str = "created",
                starred_at: datetime | None = None, delivery: str | None = None
                ) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a signed GitHub `star` delivery."""
    moment = starred_at or datetime.now(UTC)
    payload: dict[str, Any] = {
        "action": action,
        "starred_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ") if action == "created" else None,
        "repository": {"id": repo, "name": f"repo{repo}", "full_name": f"user{owner}/repo{repo}",
                       "html_url": f"https://github.com/user{owner}/repo{repo}",
                       "owner": {"id": owner, "login": f"user{owner}"}},
        "sender": {"id": sender, "login": f"user{sender}"},
    }
    body = json.dumps(payload).encode()
    return body, github_headers(secret, body, "star", delivery or str(uuid.uuid4()))


def github_headers(secret: str, body: bytes, event: str, delivery: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def standard_headers(secret: str, body: bytes, message_id: str,
                     at: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers signing `body` as message `message_id` sent `at` (now)."""
    moment = at or datetime.now(UTC)
    signature = Webhook(secret).sign(message_id, moment, body.decode())
    return {"webhook-id": message_id, "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signature, "Content-Type": "application/json"}
