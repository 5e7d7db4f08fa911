"""The normalised event every connector produces, and its validation.

    {event_id, platform, kind: like | unlike, actor_id, content_id, owner_id, occurred_at,
     url?, title?}

`occurred_at` is an ISO 8601 time with a zone (or a `datetime`); it is kept as naive UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KINDS = ("like", "unlike")
PLATFORM = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
REQUIRED = ("event_id", "platform", "kind", "actor_id", "content_id", "owner_id", "occurred_at")
LIMITS = {"event_id": 255, "actor_id": 255, "owner_id": 255, "content_id": 512,
          "url": 2048, "title": 512}


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
        missing = [name for name in REQUIRED if data.get(name) in (None, "")]
        if missing:
            raise ValueError(f"event lacks {', '.join(missing)}")
        values: dict[str, Any] = {}
        for name in (*REQUIRED, "url", "title"):
            value = data.get(name)
            if name == "occurred_at" or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise ValueError(f"event field {name} must be a string")
            value = str(value)
            if len(value) > LIMITS.get(name, 64):
                raise ValueError(f"event field {name} is too long")
            values[name] = value
        if values["kind"] not in KINDS:
            raise ValueError("event kind must be like or unlike")
        if not PLATFORM.match(values["platform"]):
            raise ValueError("event platform must be a short lower-case name")
        return cls(occurred_at=parse_time(data["occurred_at"]), **values)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in (*REQUIRED, "url", "title")}
        data["occurred_at"] = self.occurred_at.isoformat(timespec="microseconds") + "Z"
        return {key: value for key, value in data.items() if value is not None}

    @property
    def key(self) -> tuple[str, str]:
        return (self.platform, self.event_id)

    @property
    def giver_key(self) -> tuple[str, str]:
        """The identity whose linked user gives this like."""
        return (self.actor_platform or self.platform, self.actor_id)


def parse_time(value: Any) -> datetime:
    """An aware datetime, an ISO 8601 string with a zone, or Unix milliseconds → naive UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value / 1000, UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("occurred_at must be an ISO 8601 time") from None
    else:
        raise ValueError("occurred_at must be an ISO 8601 time")
    if moment.tzinfo is None:
        raise ValueError("occurred_at must carry a time zone")
    return moment.astimezone(UTC).replace(tzinfo=None)
