"""A small declarative framework for webhook connectors.

A connector is data: its name, the config section and keys that switch it on, the signature
scheme that guards it, the header carrying the platform's delivery id, and a `normalise`
function that turns a verified payload into normalised events. Signature schemes are reusable
verifiers that work on the raw request bytes with constant-time comparisons; they raise
`SignatureError` with a description that never contains a secret or a signature.

A platform with a webhook puts its `CONNECTOR = WebhookConnector(...)` in its descriptor
(`connectors.platform.Platform`; README, "Adding a platform"). Schemes not defined here (X's
base64 HMAC, Discord's Ed25519) are classes with the same `verify` method, defined next to their
connector.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from standardwebhooks import Webhook, WebhookVerificationError

from base.config import Settings as Config
from base.inputs import loads_json
from ledger.events import NormalisedEvent

Headers = Mapping[str, str]
Settings = Any  # a platform's settings dataclass (`connectors.platform`)


class SignatureError(Exception):
    """The request is unsigned, forged or stale. The message is safe to show to the sender."""


class PayloadError(ValueError):
    """The request is signed but its payload is malformed. The message is safe to show."""


class Verifier(Protocol):
    """A signature scheme: raises SignatureError unless `body` is authentic under `settings`."""

    def check_settings(self, settings: Settings) -> None:
        """Raise ValueError (naming the key, never its value) if the secret is unusable."""

    def verify(self, settings: Settings, body: bytes, headers: Headers) -> None:
        """Raise SignatureError unless the raw `body` with `headers` is authentic."""


@dataclass(frozen=True, slots=True)
class HmacSha256Hex:
    """`<header>: sha256=<hex HMAC-SHA256(secret, raw body)>`, as GitHub signs its deliveries."""

    header: str
    secret_key: str
    prefix: str = "sha256="

    def check_settings(self, settings: Settings) -> None:
        """Any non-empty string is a usable HMAC key."""

    def verify(self, settings: Settings, body: bytes, headers: Headers) -> None:
        given = headers.get(self.header, "")
        if not given:
            raise SignatureError(f"missing {self.header} header")
        if not given.startswith(self.prefix):
            raise SignatureError(f"{self.header} must start with {self.prefix}")
        secret = getattr(settings, self.secret_key).encode()
        # one call into OpenSSL (no HMAC object), with the digest named rather than
        # hashlib.sha256: OpenSSL 3 then skips a lookup (a third faster)
        expected = self.prefix + hmac.digest(secret, body, "sha256").hex()
        if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            raise SignatureError("signature does not match")


@dataclass(frozen=True, slots=True)
class StandardWebhooks:
    """Standard Webhooks: `webhook-id`, `webhook-timestamp` (5-minute window) and
    `webhook-signature` (`v1,<base64>` …) over `id.timestamp.body`, secret `whsec_<base64>`."""

    secret_key: str

    def check_settings(self, settings: Settings) -> None:
        try:
            Webhook(getattr(settings, self.secret_key))
        except Exception:
            raise ValueError(f"{self.secret_key} is not a whsec_ secret") from None

    def verify(self, settings: Settings, body: bytes, headers: Headers) -> None:
        wanted = ("webhook-id", "webhook-timestamp", "webhook-signature")
        values = {name: headers.get(name, "") for name in wanted}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise SignatureError(f"missing {', '.join(missing)} header")
        try:
            Webhook(getattr(settings, self.secret_key)).verify(body, values, json_parse=False)
        except WebhookVerificationError as exc:
            reason = str(exc).lower()
            if "timestamp too" in reason:
                raise SignatureError(f"webhook-timestamp is outside the window: {reason}") from None
            raise SignatureError("signature does not match") from None
        except (ValueError, TypeError, OverflowError):
            # Not UTF-8, a signature without a version, bad base64: not a valid signature.
            raise SignatureError("malformed webhook-signature") from None


Normaliser = Callable[[Any, Headers], list[NormalisedEvent]]
Parser = Callable[[bytes, Headers], Any]
Replier = Callable[[Any, Sequence[NormalisedEvent]], dict[str, Any]]


def default_reply(_payload: Any, events: Sequence[NormalisedEvent]) -> dict[str, Any]:
    return {"accepted": len(events)}


def json_body(body: bytes, _headers: Headers) -> Any:
    """The payload of a delivery whose body is JSON."""
    return parse_json(body)


@dataclass(frozen=True, slots=True)
class WebhookConnector:
    """One platform's inbound webhook, described as data.

    `normalise(payload, headers)` gets the parsed JSON body and returns the events to record
    (an empty list for deliveries that carry none, such as GitHub's ping); it raises
    PayloadError for malformed payloads. `parse(body, headers)` turns the verified raw body
    into that payload (JSON by default). `reply` builds the 2xx body, sent with
    `accepted_status` when events were stored (202, or what the platform asks for).
    """

    name: str
    verifier: Verifier
    normalise: Normaliser
    config_keys: tuple[str, ...]
    delivery_header: str | None = None
    section: str = ""
    reply: Replier = field(default=default_reply)
    parse: Parser = field(default=json_body)
    accepted_status: int = 202

    def settings(self, config: Config) -> Settings:
        return config.connectors[self.section or self.name]

    def enabled(self, config: Config) -> bool:
        """On when every one of its config keys is set."""
        settings = self.settings(config)
        return all(getattr(settings, key) for key in self.config_keys)

    def check(self, config: Config) -> None:
        """Raise ValueError naming the bad key if the connector is on but its secret is unusable."""
        try:
            self.verifier.check_settings(self.settings(config))
        except ValueError as exc:
            raise ValueError(f"connectors.{self.section or self.name}.{exc}") from None

    def delivery_id(self, headers: Headers) -> str | None:
        return headers.get(self.delivery_header) if self.delivery_header else None

    def accept(self, config: Config, body: bytes,
               headers: Headers) -> tuple[list[NormalisedEvent], dict[str, Any]]:
        """Verify the raw body, then parse and normalise it: (events, reply body).

        Raises SignatureError (nothing was parsed) or PayloadError."""
        self.verifier.verify(self.settings(config), body, headers)
        payload = self.parse(body, headers)
        events = self.normalise(payload, headers)
        return events, self.reply(payload, events)


def parse_json(body: bytes) -> Any:
    """The JSON body (bounded in depth; see `base.inputs.loads_json`), or PayloadError."""
    try:
        return loads_json(body)
    except ValueError as exc:
        raise PayloadError(f"body is not JSON we accept: {exc}") from None


def event(**fields: Any) -> NormalisedEvent:
    """NormalisedEvent.from_dict, with its ValueError turned into a PayloadError."""
    try:
        return NormalisedEvent.from_dict(fields)
    except ValueError as exc:
        raise PayloadError(str(exc)) from None


def field_of(payload: Any, *path: str) -> Any:
    """`payload[path[0]][path[1]]…`, or PayloadError naming the dotted path."""
    node = payload
    for depth, key in enumerate(path):
        # JSON objects are dicts: testing for that first skips the slower ABC test
        if not (type(node) is dict or isinstance(node, Mapping)) or node.get(key) in (None, ""):
            raise PayloadError(f"payload lacks {'.'.join(path[: depth + 1])}")
        node = node[key]
    return node
