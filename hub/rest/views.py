"""Building the API's answers from domain functions, in one transaction each: things as a
given caller sees them (`flattred`, `subscribed`, the owner's extra fields), and lists of
flattrs with their things."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from catalog.things import get_things
from hub.rest import present
from ledger.flattr_lists import FlattrEntry
from ledger.subscriptions import subscribed_things
from members.apps import Grant
from members.profiles import profile


@dataclass(frozen=True)
class Asker:
    """Who asks for things and how: the Bearer token's grant (None: anonymous) and whether
    they want `full` objects (the owner as a whole user, Flattr's `full` parameter)."""

    grant: Grant | None
    full: bool = False


def things_json(conn: Connection, base: str, things: Sequence[Mapping[str, Any]],
                asker: Asker) -> list[dict[str, Any]]:
    """`things` as the asker sees them: with a token also `flattred` (this month) and
    `subscribed`, and for their own things `last_flattr_at` and `updated_at`."""
    grant = asker.grant
    if grant is None:
        shown = [present.thing(base, t) for t in things]
    else:
        things = get_things(conn, [int(t["id"]) for t in things], grant.user_id)
        subscribed = subscribed_things(conn, grant.user_id, [int(t["id"]) for t in things])
        shown = [present.thing(base, t, flattred=bool(t.get("flattred")),
                               subscribed=int(t["id"]) in subscribed,
                               owner_view=(t.get("owner") or {}).get("uid") == grant.user_id,
                               last_flattr_at=t.get("last_flattr_at"))
                 for t in things]
    if asker.full:
        owners: dict[int, dict[str, Any]] = {}
        for thing, data in zip(things, shown, strict=True):
            uid = (thing.get("owner") or {}).get("uid")
            if uid is not None:
                if uid not in owners:
                    who = profile(conn, uid=uid)
                    owners[uid] = data["owner"] if who is None else present.user(base, who)
                data["owner"] = owners[uid]
    return shown


def flattrs_json(conn: Connection, base: str, entries: list[FlattrEntry],
                 full: bool) -> list[dict[str, Any]]:
    """Flattr objects; with `full` (Flattr's `full=1`) the whole thing and user objects."""
    shown = entries_json(conn, base, entries, present.flattr)
    if full and shown:
        things = things_json(conn, base, get_things(conn, [f["thing"]["id"] for f in shown]),
                             Asker(None, full=True))
        by_id = {t["id"]: t for t in things}
        givers = {e.giver: profile(conn, name=e.giver) for e in entries}
        for flattr in shown:
            flattr["thing"] = by_id.get(flattr["thing"]["id"], flattr["thing"])
            who = givers.get(flattr["owner"]["username"])
            if who is not None:
                flattr["owner"] = present.user(base, who)
    return shown


def entries_json(conn: Connection, base: str, entries: list[FlattrEntry],
                 shape: Callable[[str, FlattrEntry, Mapping[str, Any]], dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """Each flattr entry with its thing, in `shape` (present.flattr or present.activity);
    entries whose thing was deleted from the catalog are left out."""
    things = {int(t["id"]): t for t in get_things(conn, sorted({e.thing_id for e in entries}))}
    return [shape(base, entry, things[entry.thing_id]) for entry in entries
            if entry.thing_id in things]
