"""The normalised event every connector produces, and its validation.

    {event_id, platform, kind: like | unlike, actor_id, content_id, owner_id, occurred_at,
     url?, title?}

`occurred_at` is an ISO 8601 time with a zone (or a `datetime`, or Unix milliseconds); it is
kept as naive UTC. Every field must pass the rules of `ledger.validation` (text, lengths, an
http(s) `url`, a time within the sane window, 64-bit integers): `from_dict` checks an event
from outside, `check_event` one built by the hub's own code from platform data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter, le
from typing import Any

from ledger.sql import naive
from ledger.validation import (
    CONTROL,
    INT64_MAX,
    INT64_MIN,
    check_int,
    check_text,
    check_time,
    check_url,
)

KINDS = ("like", "unlike")
PLATFORM = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
REQUIRED = ("event_id", "platform", "kind", "actor_id", "content_id", "owner_id", "occurred_at")
LIMITS = {"event_id": 255, "actor_id": 255, "owner_id": 255, "content_id": 512,
          "url": 2048, "title": 512}
TEXT_FIELDS = tuple(name for name in (*REQUIRED, "url", "title") if name != "occurred_at")
# Each text field with the name its errors use and its length limit, in the order checked.
TEXT_RULES = tuple((name, f"event field {name}", LIMITS.get(name, 64)) for name in TEXT_FIELDS)


@dataclass(frozen=True, slots=True)
class NormalisedEvent:
    event_id: str
    platform: str
    kind: str
    actor_id: str
    content_id: str
    owner_id: str
    occurred_at: datetime
    url: str | None = None
    title: str | None = None
    # A like made on the hub (button, API) of a thing of any platform: the giver is the hub
    # identity (actor_platform, actor_id), not an identity on the thing's platform.
    actor_platform: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NormalisedEvent:
        """Validate `data`; raise ValueError naming the first field that is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError("event must be a JSON object")
        get = data.get
        missing = [name for name in REQUIRED if get(name) in (None, "")]
        if missing:
            raise ValueError(f"event lacks {', '.join(missing)}")
        values: dict[str, Any] = {}
        for name in TEXT_FIELDS:
            value = get(name)
            if value is None:
                continue
            kind = type(value)  # the usual types first: the isinstance tests cost more
            if kind is int and INT64_MIN <= value <= INT64_MAX:
                value = str(value)
            elif kind is not str:
                if isinstance(value, bool) or not isinstance(value, str | int):
                    raise ValueError(f"event field {name} must be a string")
                if isinstance(value, int):
                    value = str(check_int(value, f"event field {name}"))
            values[name] = value
        made = cls(occurred_at=parse_time(data["occurred_at"]), **values)
        check_event(made)
        return made

    def to_dict(self) -> dict[str, Any]:
        """The fields of `from_dict` that are set, `occurred_at` as ISO 8601 UTC ("…Z")."""
        data = {"event_id": self.event_id, "platform": self.platform, "kind": self.kind,
                "actor_id": self.actor_id, "content_id": self.content_id,
                "owner_id": self.owner_id,
                "occurred_at": self.occurred_at.isoformat(timespec="microseconds") + "Z",
                "url": self.url, "title": self.title}
        if None in data.values():
            return {key: value for key, value in data.items() if value is not None}
        return data

    @property
    def key(self) -> tuple[str, str]:
        return (self.platform, self.event_id)

    @property
    def giver_key(self) -> tuple[str, str]:
        """The identity whose linked user gives this like."""
        return (self.actor_platform or self.platform, self.actor_id)


def check_event(event: NormalisedEvent) -> None:
    """Raise ValueError naming the first field of `event` that breaks a rule."""
    if not _plain_texts(event):
        for name, label, limit in TEXT_RULES:
            value = getattr(event, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValueError(f"{label} must be a string")
            check_text(value, label, limit)
    if event.kind not in KINDS:
        raise ValueError("event kind must be like or unlike")
    if not PLATFORM.match(event.platform):
        raise ValueError("event platform must be a short lower-case name")
    if event.url is not None:
        check_url(event.url, "event field url")
    check_time(event.occurred_at, "occurred_at")


def _plain_texts(event: NormalisedEvent) -> bool:
    """Whether every text field of `event` is ASCII text within its limit and without control
    characters: then each passes `check_text`, and one test of them all joined says so at a
    fraction of the cost of a test per field (the webhook path: each step runs in C, without a
    loop in Python). False sends the caller to the test per field, which names the first field
    at fault."""
    texts, limits = _TEXTS_OF(event), _TEXT_LIMITS
    if None in texts:  # fields not set (url, title) are skipped
        present = [(text, limit) for text, limit in zip(texts, limits, strict=True)
                   if text is not None]
        texts, limits = tuple(text for text, _ in present), tuple(limit for _, limit in present)
    try:
        joined = "".join(texts)
    except TypeError:  # a field that is not text
        return False
    return (all(map(le, map(len, texts), limits)) and joined.isascii()
            and not CONTROL.search(joined))


_TEXTS_OF = attrgetter(*TEXT_FIELDS)
_TEXT_LIMITS = tuple(limit for _name, _label, limit in TEXT_RULES)


def parse_time(value: Any) -> datetime:
    """An aware datetime, an ISO 8601 string with a zone, or Unix milliseconds → naive UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("occurred_at does not fit in 64 bits")
        try:
            moment = datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("occurred_at is out of range") from None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)  # Python 3.11 reads a "Z" zone too
        except ValueError:
            raise ValueError("occurred_at must be an ISO 8601 time") from None
    else:
        raise ValueError("occurred_at must be an ISO 8601 time")
    if moment.tzinfo is None:
        raise ValueError("occurred_at must carry a time zone")
    try:
        return naive(moment.astimezone(UTC))
    except OverflowError:
        raise ValueError("occurred_at is out of range") from None
