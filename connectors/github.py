"""GitHub stars: `star` webhooks (`created` → like, `deleted` → unlike), signed with
`X-Hub-Signature-256` and deduplicated on `X-GitHub-Delivery`. `ping` and other events are
answered 2xx and record nothing. Both of GitHub's content types are accepted: `application/json`
and its default `application/x-www-form-urlencoded` (`payload=<JSON>`); the signature covers
the raw body either way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from connectors.base import (
    Headers,
    HmacSha256Hex,
    PayloadError,
    WebhookConnector,
    event,
    field_of,
    parse_json,
)
from connectors.platform import OAuthProvider, Platform
from ledger.events import NormalisedEvent, check_event, parse_time
from ledger.validation import INT64_MAX

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
    return [_usual_star(payload, delivery, KINDS[action])
            or _star(payload, delivery, KINDS[action])]


def _star(payload: Any, delivery: str, kind: str) -> NormalisedEvent:
    """The event of any star delivery, through the checks of an event from outside."""
    repository = field_of(payload, "repository")
    return event(
        event_id=delivery,
        platform="github",
        kind=kind,
        actor_id=field_of(payload, "sender", "id"),
        content_id=field_of(payload, "repository", "id"),
        owner_id=field_of(payload, "repository", "owner", "id"),
        occurred_at=payload.get("starred_at") or datetime.now(UTC),
        url=repository.get("html_url") or _url(repository),
        title=repository.get("full_name") or repository.get("name"),
    )


def _usual_star(payload: Any, delivery: str, kind: str) -> NormalisedEvent | None:
    """The event of a star delivery shaped as GitHub sends them (objects, integer ids, the
    repository's URL and full name), built directly: the same event as `_star` at about two
    thirds of the cost (the webhook path). None for any other shape, which `_star` then
    takes."""
    repository, sender = payload.get("repository"), payload.get("sender")
    if type(repository) is not dict or type(sender) is not dict:
        return None
    owner, url, title = repository.get("owner"), repository.get("html_url"), \
        repository.get("full_name")
    if type(owner) is not dict or type(url) is not str or type(title) is not str \
            or not url or not title:
        return None
    actor, content, owner_id = sender.get("id"), repository.get("id"), owner.get("id")
    if not (type(actor) is int and type(content) is int and type(owner_id) is int
            and min(actor, content, owner_id) >= 0 and max(actor, content, owner_id) <= INT64_MAX):
        return None
    when = payload.get("starred_at")
    if when is not None and type(when) is not str:
        return None
    try:
        made = NormalisedEvent(
            event_id=delivery, platform="github", kind=kind, actor_id=str(actor),
            content_id=str(content), owner_id=str(owner_id),
            occurred_at=parse_time(when or datetime.now(UTC)), url=url, title=title)
        check_event(made)
    except ValueError as exc:
        raise PayloadError(str(exc)) from None
    return made


def parse(body: bytes, headers: Headers) -> Any:
    """The delivery's JSON: the body itself, or its `payload` field when form-encoded."""
    media_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return parse_json(body)
    try:
        fields = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                           max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise PayloadError("form body is not url-encoded") from None
    payloads = [value for name, value in fields if name == "payload"]
    if len(payloads) != 1:
        raise PayloadError("form body must hold one payload field")
    return parse_json(payloads[0].encode())


def _url(repository: dict[str, Any]) -> str | None:
    name = repository.get("full_name")
    return f"https://github.com/{name}" if isinstance(name, str) and name else None


CONNECTOR = WebhookConnector(
    name="github",
    verifier=HmacSha256Hex(header="X-Hub-Signature-256", secret_key="webhook_secret"),
    normalise=normalise,
    parse=parse,
    config_keys=("webhook_secret",),
    delivery_header="X-GitHub-Delivery",
)


@dataclass(frozen=True)
class GitHubSettings:
    """`connectors.github`: the webhook is on with `webhook_secret`, linking with
    `client_id`."""

    webhook_secret: str = field(default="", repr=False)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    # linking: "" = github.com/login/oauth/authorize, …/access_token, api.github.com/user
    oauth_authorize_url: str = ""
    oauth_token_url: str = ""
    profile_url: str = ""


PLATFORM = Platform(
    name="github", display_name="GitHub", settings=GitHubSettings, webhook=CONNECTOR,
    linking=OAuthProvider(
        "https://github.com/login/oauth/authorize",
        "https://github.com/login/oauth/access_token", "https://api.github.com/user", (),
        pkce=False, client_auth="post", user_id=("id",), username=("login",)),
)
