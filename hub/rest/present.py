"""Flattr's v2 JSON shapes: users, things (small, public, as seen by a member, as seen by their
owner), flattrs, subscriptions and Activity Streams items. Times are Unix seconds, as Flattr's
were; activities use RFC 3339. `base` is the hub's absolute URL."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from ledger.flattr_lists import FlattrEntry
from ledger.subscriptions import Subscription
from members.profiles import Profile

API = "/rest/v2"


def unix(moment: datetime | None) -> int:
    return 0 if moment is None else int(moment.replace(tzinfo=UTC).timestamp())


def user_link(base: str, name: str) -> str:
    return f"{base}/u/{quote(name)}"


def thing_link(base: str, tid: int) -> str:
    return f"{base}/things/{tid}"


def thing_resource(base: str, tid: int) -> str:
    return f"{base}{API}/things/{tid}"


def small_user(base: str, name: str | None) -> dict[str, Any]:
    """A user reference; `username` is null for a creator who is not on the hub yet."""
    return {"type": "user",
            "resource": None if name is None else f"{base}{API}/users/{quote(name)}",
            "link": None if name is None else user_link(base, name),
            "username": name}


def user(base: str, who: Profile, *, email: bool = False, extended: bool = False
         ) -> dict[str, Any]:
    """The full user; with `extended` (scope extendedread) also `email` and `registered_at`,
    with `email` (scope email) the e-mail address ("" when they gave none). `url` is their
    profile page on the hub (Flattr's "URL set by the user": the hub has no such setting)."""
    data = {**small_user(base, who.username), "firstname": "", "lastname": "", "avatar": "",
            "about": "", "city": "", "country": "", "url": user_link(base, who.username)}
    if email or extended:
        data["email"] = who.email or ""
    if extended:
        data["registered_at"] = unix(who.registered_at)
    return data


def small_thing(base: str, thing: Mapping[str, Any]) -> dict[str, Any]:
    tid = int(thing["id"])
    return {"type": "thing", "resource": thing_resource(base, tid), "link": thing_link(base, tid),
            "id": tid, "url": thing.get("url"), "title": thing.get("title") or "", "image": "",
            "owner": small_user(base, (thing.get("owner") or {}).get("username")),
            "flattrs": int(thing.get("flattrs") or 0)}


def thing(base: str, thing: Mapping[str, Any], *, flattred: bool | None = None,
          subscribed: bool | None = None, owner_view: bool = False,
          last_flattr_at: datetime | None = None) -> dict[str, Any]:
    """A thing; `flattred`/`subscribed` for a member's token, `owner_view` for its owner."""
    data = {**small_thing(base, thing),
            "language": thing.get("language") or "en_GB",
            "category": thing.get("category") or "rest",
            "flattrs_user_count": int(thing.get("flattrs_user_count") or 0),
            "hidden": bool(thing.get("hidden")), "created_at": unix(thing.get("created_at")),
            "tags": list(thing.get("tags") or []),
            "flattrs_month": int(thing.get("flattrs_month") or 0),
            "description": thing.get("description") or ""}
    if thing.get("submitter"):  # ours: who registered a web page (never its owner for that)
        data["submitter"] = small_user(base, thing["submitter"])
    if flattred is not None:
        data["flattred"] = flattred
    if subscribed is not None:
        data["subscribed"] = subscribed
    if owner_view:
        data["last_flattr_at"] = unix(last_flattr_at)
        data["updated_at"] = unix(thing.get("updated_at"))
    return data


def flattr(base: str, entry: FlattrEntry, thing: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "flattr", "thing": small_thing(base, thing),
            "owner": small_user(base, entry.giver), "created_at": unix(entry.occurred_at)}


def subscription(base: str, sub: Subscription, thing: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "subscription", "active": sub.active, "created_at": unix(sub.created_at),
            "started_at": unix(sub.created_at), "months": sub.months,
            "months_left": sub.months_left, "thing": small_thing(base, thing)}


def activity(base: str, entry: FlattrEntry, thing: Mapping[str, Any]) -> dict[str, Any]:
    """One flattr as an Activity Streams 1.0 JSON activity (verb `like`)."""
    title = thing.get("title") or thing.get("url") or f"thing {entry.thing_id}"
    host = urlsplit(base).hostname or "localhost"
    published = entry.occurred_at.replace(tzinfo=UTC)
    return {"published": published.isoformat(timespec="seconds"),
            "title": f'{entry.giver} flattred "{title}"',
            "actor": {"displayName": entry.giver, "url": user_link(base, entry.giver),
                      "objectType": "person"},
            "verb": "like",
            "object": {"displayName": title, "url": thing_link(base, entry.thing_id),
                       "objectType": "bookmark"},
            "id": f"tag:{host},{published.date().isoformat()}:{entry.giver}/flattr/"
                  f"{entry.thing_id}"}
