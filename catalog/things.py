"""Things people flattr with the Flattr button: create, read, search, update, delete, flattr.

A web page registered with the hub (API, button, auto-submit) is a thing of platform "web"
keyed by its normalised URL (catalog.urls.normalise, the same on write and on lookup). It
belongs to whoever claimed its site: its owner identity is ("web", host) (members.sites), so
while nobody has claimed the site its flattrs are pledges for that identity; the member who
submitted it is recorded in `thing_details.submitted_by` as its submitter only. Things of
platform "flattr" (content id a URL, owner ("flattr", user name)) were registered before that
rule and keep their owner. Their details (description, category, language, tags, hidden,
updated_at) live in `thing_details` / `thing_tags` (base.tables.catalog), keyed by things.id.
Things of other platforms (GitHub repositories, tweets…) have no details; `get_thing`,
`lookup_url` (by the URL they show) and `search` still show them, and a member may flattr them
here too: every flattr goes through ledger.ingest, so the money rules hold the same.

Thing dicts use Flattr's v2 field names: id, url, title, description, category, language,
tags (list), hidden (bool), created_at / updated_at / last_flattr_at (naive UTC datetimes or
None), flattrs (all time), flattrs_user_count (distinct givers), flattrs_month, platform,
owner {"username": the hub user who claimed the owner identity or None, "platform",
"platform_user_id"}, submitter (user name or None).

Errors: catalog.errors.CatalogError subclasses — InvalidThing (bad field: 400),
NotFound (404 not_found), Forbidden (not the owner: 403), Conflict (the URL already has a
thing: 409); each has `code` and a message fit for a user.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Connection, Integer, and_, delete, exists, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from base.tables.catalog import thing_details, thing_tags
from catalog.errors import Conflict, Forbidden, InvalidThing, NotFound
from catalog.urls import normalise, site_of
from catalog.vocab import CATEGORIES, CATEGORY_IDS, LANGUAGE_IDS
from ledger.events import NormalisedEvent
from ledger.identities import identity_id, link
from ledger.ingest import ingest
from ledger.months import month_of
from ledger.schema import flattrs, identities, things, users
from ledger.sql import dialect_insert, utcnow

PLATFORM = "flattr"
WEB = "web"
BUTTON_PLATFORMS = (PLATFORM, WEB)  # things registered on the hub, with details
DEFAULT_CATEGORY, DEFAULT_LANGUAGE = "rest", "en_GB"  # Flattr's documented defaults
SORTS = ("trend", "flattrs_month", "flattrs_all")
TREND_DAYS = 7
# What `flattr` answers. The REST API maps all but the first two to its error codes.
OUTCOMES = ("flattred", "pledged", "flattr_once", "flattr_owner", "not_found", "not_flattrable")
FIELDS = ("title", "description", "category", "language", "tags", "hidden")
MAX_TITLE, MAX_DESCRIPTION, MAX_TAG, MAX_TAGS, MAX_COUNT = 255, 1000, 64, 20, 100
LIVE = thing_details.c.deleted_at.is_(None)  # not deleted by its owner
INGEST_OUTCOMES = {"flattred": "flattred", "pledge": "pledged", "already": "flattr_once",
                   "duplicate": "flattr_once", "retracted": "flattr_once",
                   "self": "flattr_owner"}


# --- validation -------------------------------------------------------------------------------

def _text(name: str, value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidThing(f"{name} must be text")
    value = value.strip()
    if len(value) > limit:
        raise InvalidThing(f"{name} must be at most {limit} characters")
    return value or None


def _choice(name: str, value: Any, allowed: frozenset[str]) -> str | None:
    if value in (None, ""):
        return None
    if value not in allowed:
        raise InvalidThing(f"{name} {str(value)[:40]!r} is not one of Flattr's {name}s")
    return str(value)


def parse_tags(value: str | list[str] | None) -> list[str]:
    """Tags from a comma-separated string or a list: trimmed, lower case, no repeats."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(t, str) for t in items):
        raise InvalidThing("tags must be a comma-separated text or a list of texts")
    tags: list[str] = []
    for raw in items:
        tag = raw.strip().lower()
        if len(tag) > MAX_TAG:
            raise InvalidThing(f"a tag must be at most {MAX_TAG} characters")
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise InvalidThing(f"at most {MAX_TAGS} tags")
    return tags


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (None, "", 0, "0", "false", "False"):
        return False
    if value in (1, "1", "true", "True"):
        return True
    raise InvalidThing(f"{name} must be 0 or 1")


def _fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """The given fields of a thing, validated."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidThing(f"unknown field {unknown[0][:40]}")
    checks = {
        "title": lambda v: _text("title", v, MAX_TITLE),
        "description": lambda v: _text("description", v, MAX_DESCRIPTION),
        "category": lambda v: _choice("category", v, CATEGORY_IDS),
        "language": lambda v: _choice("language", v, LANGUAGE_IDS),
        "tags": parse_tags,
        "hidden": lambda v: _flag("hidden", v),
    }
    return {name: checks[name](value) for name, value in values.items()}


# --- owners -----------------------------------------------------------------------------------

def hub_identity(conn: Connection, uid: int) -> tuple[int, str]:
    """User `uid`'s own identity on the hub ("flattr", their name), linked and claimed by them
    (created on first use); returns (identity id, name)."""
    name = conn.execute(select(users.c.name).where(users.c.id == uid)).scalar()
    if name is None:
        raise NotFound("no such user")
    return link(conn, uid, PLATFORM, name, claim=True), name


# --- create, read -----------------------------------------------------------------------------

def create_thing(conn: Connection, submitter_uid: int, url: str, title: str | None = None,
                 description: str | None = None, category: str | None = None,
                 language: str | None = None, tags: str | list[str] | None = None,
                 hidden: bool = False) -> int:
    """Register the web page `url` as submitted by user `submitter_uid` and return its thing
    id. The thing belongs to whoever claimed the page's site (see the module docstring), never
    to the submitter for being first. `tags` is a comma-separated string or a list; category
    and language default to Flattr's "rest" and "en_GB". The site's owner registering a page
    that has a thing already sets its details. Raises InvalidThing (bad url/category/language/
    tag or too long a field), Conflict when the URL already has a thing that is not the
    submitter's, NotFound for an unknown submitter. A deleted thing comes back."""
    content_id = normalise(url)
    fields = _fields({"title": title, "description": description, "category": category,
                      "language": language, "tags": tags, "hidden": hidden})
    fields["category"] = fields["category"] or DEFAULT_CATEGORY
    fields["language"] = fields["language"] or DEFAULT_LANGUAGE
    if conn.execute(select(users.c.id).where(users.c.id == submitter_uid)).scalar() is None:
        raise NotFound("no such user")
    thing_id = lookup_url(conn, content_id)
    if thing_id is None:
        owner = identity_id(conn, WEB, site_of(content_id))
        conn.execute(dialect_insert(conn, things).values(
            platform=WEB, content_id=content_id, owner_identity_id=owner, url=content_id,
            title=fields["title"], created_at=utcnow(),
        ).on_conflict_do_nothing(index_elements=["platform", "content_id"]))
        thing_id = conn.execute(select(things.c.id).where(
            things.c.platform == WEB, things.c.content_id == content_id)).scalar_one()
    row = _owner_row(conn, thing_id)
    live = row.detailed is not None and row.deleted_at is None
    if row.platform not in BUTTON_PLATFORMS or (live and row.claimed_by != submitter_uid):
        raise Conflict(_taken(row))
    now = utcnow()
    conn.execute(update(things).where(things.c.id == thing_id).values(title=fields["title"]))
    conn.execute(delete(thing_details).where(thing_details.c.thing_id == thing_id))
    conn.execute(thing_details.insert().values(
        thing_id=thing_id, description=fields["description"], category=fields["category"],
        language=fields["language"], hidden=fields["hidden"], updated_at=now,
        submitted_by=submitter_uid))
    _set_tags(conn, thing_id, fields["tags"])
    return thing_id


def _owner_row(conn: Connection, thing_id: int) -> Any:
    """The thing's platform, owner identity (platform, id, claimer), submitter and whether it
    has details (`detailed`) or was deleted; None when there is no such thing."""
    return conn.execute(
        select(things.c.platform, things.c.content_id, things.c.url, things.c.title,
               identities.c.platform.label("owner_platform"), identities.c.platform_user_id,
               identities.c.claimed_by, thing_details.c.deleted_at,
               thing_details.c.submitted_by, thing_details.c.thing_id.label("detailed"))
        .select_from(things.join(identities, identities.c.id == things.c.owner_identity_id)
                     .outerjoin(thing_details, thing_details.c.thing_id == things.c.id))
        .where(things.c.id == thing_id)
    ).first()


def _taken(row: Any) -> str:
    if row.platform not in BUTTON_PLATFORMS:
        return f"that URL is already a {row.platform} thing on Flattr Hub"
    if row.owner_platform == WEB and row.claimed_by is None:
        return (f"that URL already has a thing on Flattr Hub; it belongs to whoever claims "
                f"the site {row.platform_user_id}: claim it to own the thing")
    return "that URL already has a thing on Flattr Hub"


def _answerable(row: Any) -> int | None:
    """Who answers for a thing in the self-flattr check: the claimer of its owner identity, or
    while nobody has claimed it, the member who submitted it."""
    return row.claimed_by if row.claimed_by is not None else row.submitted_by


def _set_tags(conn: Connection, thing_id: int, tags: list[str]) -> None:
    conn.execute(delete(thing_tags).where(thing_tags.c.thing_id == thing_id))
    if tags:
        conn.execute(thing_tags.insert(), [{"thing_id": thing_id, "tag": t} for t in tags])


def _stats(now: datetime, of_things: Any) -> tuple[Any, Any, Any]:
    """Per-thing counts of active flattrs of the things `of_things` selects (ids): all time
    (with the latest), this month, and the last TREND_DAYS days."""
    active = and_(flattrs.c.retracted_at.is_(None), flattrs.c.thing_id.in_(of_things))
    every = (select(flattrs.c.thing_id, func.count().label("n"),
                    func.count(flattrs.c.giver_id.distinct()).label("givers"),
                    func.max(flattrs.c.occurred_at).label("last"))
             .where(active).group_by(flattrs.c.thing_id).subquery("every"))
    month = (select(flattrs.c.thing_id, func.count().label("n"))
             .where(active, flattrs.c.month == month_of(now))
             .group_by(flattrs.c.thing_id).subquery("this_month"))
    trend = (select(flattrs.c.thing_id, func.count().label("n"))
             .where(active, flattrs.c.occurred_at >= now - timedelta(days=TREND_DAYS))
             .group_by(flattrs.c.thing_id).subquery("trend"))
    return every, month, trend


def _things_from() -> Any:
    return (things.join(identities, identities.c.id == things.c.owner_identity_id)
            .outerjoin(thing_details, thing_details.c.thing_id == things.c.id))


def _query(now: datetime, *where: Any) -> tuple[Any, Any, Any, Any]:
    """SELECT of the rows of things matching `where` with owner, details and counts (counted
    for those things only), and the three count subqueries."""
    every, month, trend = _stats(now, select(things.c.id).select_from(_things_from())
                                 .where(*where))
    claimer, submitter = users.alias("claimer"), users.alias("submitter")
    source = (
        _things_from()
        .outerjoin(claimer, claimer.c.id == identities.c.claimed_by)
        .outerjoin(submitter, submitter.c.id == thing_details.c.submitted_by)
        .outerjoin(every, every.c.thing_id == things.c.id)
        .outerjoin(month, month.c.thing_id == things.c.id)
        .outerjoin(trend, trend.c.thing_id == things.c.id)
    )
    query = select(
        things.c.id, things.c.platform, things.c.url, things.c.title, things.c.created_at,
        thing_details.c.description, thing_details.c.category, thing_details.c.language,
        thing_details.c.hidden, thing_details.c.updated_at,
        identities.c.platform.label("owner_platform"),
        identities.c.platform_user_id.label("owner_platform_user_id"),
        identities.c.claimed_by.label("owner_uid"), claimer.c.name.label("owner_name"),
        submitter.c.name.label("submitter_name"),
        func.coalesce(every.c.n, 0).label("flattrs"), every.c.last.label("last_flattr_at"),
        func.coalesce(every.c.givers, 0).label("flattrs_user_count"),
        func.coalesce(month.c.n, 0).label("flattrs_month"),
        func.coalesce(trend.c.n, 0).label("trend"),
    ).select_from(source).where(*where)
    return query, every, month, trend


def _tags_of(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for thing_id, tag in conn.execute(
                select(thing_tags.c.thing_id, thing_tags.c.tag)
                .where(thing_tags.c.thing_id.in_(ids)).order_by(thing_tags.c.tag)):
            found[thing_id].append(tag)
    return found


def _as_dicts(conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    tags = _tags_of(conn, [row.id for row in rows])
    return [{
        "id": row.id, "url": row.url, "title": row.title, "description": row.description,
        "category": row.category, "language": row.language, "tags": tags[row.id],
        "hidden": bool(row.hidden), "created_at": row.created_at,
        "updated_at": row.updated_at or row.created_at, "last_flattr_at": row.last_flattr_at,
        "flattrs": row.flattrs, "flattrs_month": row.flattrs_month, "platform": row.platform,
        "flattrs_user_count": row.flattrs_user_count,
        "owner": {"username": row.owner_name, "uid": row.owner_uid,
                  "platform": row.owner_platform,
                  "platform_user_id": row.owner_platform_user_id},
        "submitter": row.submitter_name,
    } for row in rows]


def get_thing(conn: Connection, thing_id: int,
              viewer_uid: int | None = None) -> dict[str, Any] | None:
    """The thing dict (see module docstring), or None when there is no such thing. With
    `viewer_uid`, "flattred" tells whether that user flattred it this month."""
    found = get_things(conn, [thing_id], viewer_uid)
    return found[0] if found else None


def get_things(conn: Connection, ids: list[int],
               viewer_uid: int | None = None) -> list[dict[str, Any]]:
    """The thing dicts of `ids` that exist, in the order of `ids` (with "flattred" as in
    `get_thing`)."""
    wanted = [i for i in dict.fromkeys(ids) if isinstance(i, int)]
    if not wanted:
        return []
    now = utcnow()
    rows = conn.execute(_query(now, LIVE, things.c.id.in_(wanted))[0]).all()
    mine = set() if viewer_uid is None else set(conn.execute(
        select(flattrs.c.thing_id).where(
            flattrs.c.giver_id == viewer_uid, flattrs.c.thing_id.in_(wanted),
            flattrs.c.month == month_of(now), flattrs.c.retracted_at.is_(None))).scalars())
    by_id = {d["id"]: {**d, "flattred": d["id"] in mine} for d in _as_dicts(conn, rows)}
    return [by_id[i] for i in wanted if i in by_id]


def lookup_url(conn: Connection, url: str) -> int | None:
    """The id of the live thing of `url`: a thing registered on the hub whose URL normalises
    like `url`, else a platform thing (a GitHub repository…) that shows `url` (as given or
    normalised); None when there is none (also for a malformed URL or a deleted thing)."""
    try:
        content_id = normalise(url)
    except InvalidThing:
        return None
    found = conn.execute(
        select(things.c.id)
        .select_from(things.outerjoin(thing_details, thing_details.c.thing_id == things.c.id))
        .where(things.c.platform.in_(BUTTON_PLATFORMS), things.c.content_id == content_id,
               LIVE)
        .order_by(things.c.id.desc()).limit(1)
    ).scalar()
    if found is None:
        found = conn.execute(
            select(things.c.id)
            .where(things.c.url.in_(sorted({content_id, url.strip()})),
                   things.c.platform.not_in(BUTTON_PLATFORMS))
            .order_by(things.c.id).limit(1)
        ).scalar()
    return found


# --- search -----------------------------------------------------------------------------------

def _choices(name: str, value: str | list[str] | None, allowed: frozenset[str]) -> list[str]:
    if value in (None, "", []):
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [c for c in (_choice(name, str(item).strip(), allowed) for item in items) if c]


def parse_tag_query(text: str) -> tuple[list[list[str]], list[str]]:
    """Flattr's tag syntax: `a | b` (either; a comma too), `a & b` (both), `! c` (not c), `&`
    binding tighter than `|`. Returns (groups, excluded): a thing matches when it has every tag
    of some group (or there are no groups) and none of the excluded tags."""
    groups: list[list[str]] = []
    excluded: list[str] = []
    group: list[str] = []
    negate = False
    for token in re.findall(r"[|,&!]|[^|,&!]+", text):
        token = token.strip()
        if token in ("|", ","):
            if group:
                groups.append(group)
            group, negate = [], False
        elif token == "&":
            negate = False
        elif token == "!":
            negate = True
        elif token:
            (excluded if negate else group).extend(parse_tags([token]))
            negate = False
    if group:
        groups.append(group)
    if sum(map(len, groups)) + len(excluded) > MAX_TAGS:
        raise InvalidThing(f"at most {MAX_TAGS} tags")
    return groups, excluded


def _has_tag(tag: str) -> Any:
    return exists().where(thing_tags.c.thing_id == things.c.id, thing_tags.c.tag == tag)


def _tag_filter(tags: str | list[str]) -> list[Any]:
    if isinstance(tags, str):
        groups, excluded = parse_tag_query(tags)
    else:
        groups, excluded = [[tag] for tag in parse_tags(tags)], []
    where = [~_has_tag(tag) for tag in excluded]
    if groups:
        where.append(or_(*(and_(*(_has_tag(tag) for tag in group)) for group in groups)))
    return where


def _shown_as(column: Any, wanted: list[str], default: str) -> Any:
    """`column` is one of `wanted`, a missing value counting as the `default` the API shows."""
    matches = column.in_(wanted)
    return or_(matches, column.is_(None)) if default in wanted else matches


def search(conn: Connection, query: str | None = None, category: str | list[str] | None = None,
           language: str | list[str] | None = None, tags: str | list[str] | None = None,
           sort: str = "trend", page: int = 1, count: int = 30, *,
           owner_uid: int | None = None, include_hidden: bool = False,
           now: datetime | None = None) -> dict[str, Any]:
    """Search visible things. `query`: words that must all appear in title, description, URL or
    tags (case-insensitive); `category`, `language`: comma-separated strings or lists, any of
    which matches (a thing without one counts as the API shows it: "rest", "en_GB"); `tags`: a
    list (any of them) or Flattr's tag syntax (`parse_tag_query`); `sort`: one of SORTS
    (trend = flattrs in the last 7 days, then all time); `page` from 1, `count` 1..100.
    `owner_uid` restricts to things whose owner identity that user claimed, or that they
    submitted while nobody has (then hidden ones are included with `include_hidden`).
    Returns Flattr's search shape: {"total_items": n, "items": len(things), "page": page,
    "things": [dicts]}.
    Raises InvalidThing for an unknown sort/category/language or a page/count out of range."""
    if sort not in SORTS:
        raise InvalidThing(f"sort must be one of {', '.join(SORTS)}")
    if not isinstance(page, int) or page < 1 or not isinstance(count, int) or not (
            1 <= count <= MAX_COUNT):
        raise InvalidThing(f"page must be 1 or more and count between 1 and {MAX_COUNT}")
    if query is not None and len(query) > 200:
        raise InvalidThing("the search text must be at most 200 characters")
    categories = _choices("category", category, CATEGORY_IDS)
    languages = _choices("language", language, LANGUAGE_IDS)
    where: list[Any] = [LIVE, *(_tag_filter(tags) if tags else [])]
    if owner_uid is not None:
        where.append(or_(identities.c.claimed_by == owner_uid, and_(
            identities.c.claimed_by.is_(None), thing_details.c.submitted_by == owner_uid)))
    if not (include_hidden and owner_uid is not None):
        where.append(or_(thing_details.c.hidden.is_(None), thing_details.c.hidden == false()))
    for word in (query or "").lower().split():
        where.append(or_(
            *(func.lower(column).contains(word, autoescape=True)
              for column in (things.c.title, thing_details.c.description, things.c.url)),
            exists().where(thing_tags.c.thing_id == things.c.id,
                           thing_tags.c.tag.contains(word, autoescape=True)),
        ))
    if categories:
        where.append(_shown_as(thing_details.c.category, categories, DEFAULT_CATEGORY))
    if languages:
        where.append(_shown_as(thing_details.c.language, languages, DEFAULT_LANGUAGE))
    filtered, every, month, trend = _query(now or utcnow(), *where)
    total = conn.execute(select(func.count()).select_from(_things_from())
                         .where(*where)).scalar_one()
    order = {
        "trend": (func.coalesce(trend.c.n, 0).desc(), func.coalesce(every.c.n, 0).desc()),
        "flattrs_month": (func.coalesce(month.c.n, 0).desc(),),
        "flattrs_all": (func.coalesce(every.c.n, 0).desc(),),
    }[sort]
    rows = conn.execute(filtered.order_by(*order, things.c.id.desc())
                        .limit(count).offset((page - 1) * count)).all()
    found = _as_dicts(conn, rows)
    return {"total_items": total, "items": len(found), "page": page, "things": found}


def top_lists(conn: Connection, size: int = 10,
              now: datetime | None = None) -> dict[str, Any]:
    """The most flattred visible things: {"month": this month's, "all": of all time,
    "categories": {category: this month's}}, each a list of at most `size` thing dicts with
    at least one flattr in that period."""
    def best(sort: str, key: str, category: str | None = None) -> list[dict[str, Any]]:
        found = search(conn, None, category, sort=sort, count=size, now=now)["things"]
        return [thing for thing in found if thing[key] > 0]

    return {"month": best("flattrs_month", "flattrs_month"), "all": best("flattrs_all", "flattrs"),
            "categories": {c: best("flattrs_month", "flattrs_month", c) for c, _ in CATEGORIES}}


# --- update, delete ---------------------------------------------------------------------------

def _owned(conn: Connection, thing_id: int, uid: int) -> None:
    """Refuse unless user `uid` may change the thing: its owner, or while nobody has claimed
    its owner identity, the member who submitted it."""
    row = _owner_row(conn, thing_id)
    if row is None or row.detailed is None or row.deleted_at is not None:
        raise NotFound("no such thing")
    if _answerable(row) != uid:
        raise Forbidden("only the thing's owner may change it")


def update_thing(conn: Connection, thing_id: int, owner_uid: int, **fields: Any) -> None:
    """Change title, description, category, language, tags or hidden of the owner's thing (see
    `_owned`). Raises NotFound, Forbidden (not the owner), InvalidThing (unknown field or bad
    value)."""
    changes = _fields(fields)
    _owned(conn, thing_id, owner_uid)
    if "title" in changes:
        conn.execute(update(things).where(things.c.id == thing_id)
                     .values(title=changes.pop("title")))
    if "tags" in changes:
        _set_tags(conn, thing_id, changes.pop("tags"))
    conn.execute(update(thing_details).where(thing_details.c.thing_id == thing_id)
                 .values(**changes, updated_at=utcnow()))


def delete_thing(conn: Connection, thing_id: int, owner_uid: int) -> None:
    """Remove the thing from the catalog: it no longer shows, looks up or takes flattrs. The
    ledger row stays (flattrs and shares point at it); its owner may create it again.
    Raises NotFound, Forbidden."""
    _owned(conn, thing_id, owner_uid)
    _set_tags(conn, thing_id, [])
    conn.execute(update(thing_details).where(thing_details.c.thing_id == thing_id)
                 .values(deleted_at=utcnow()))


# --- flattr -----------------------------------------------------------------------------------

def flattr(conn: Connection, giver_uid: int, thing_id: int, now: datetime | None = None) -> str:
    """Flattr the thing, of any platform, as user `giver_uid` at `now` (naive UTC; default
    now), through ledger.ingest as a like on the thing's platform given by the giver's hub
    identity (recorded with flattrs.source 'button'). Returns one of OUTCOMES: 'flattred' (the
    owner is on the hub), 'pledged' (nobody has claimed the thing's owner identity yet),
    'flattr_once' (already flattred this month, here or on the platform: rule 1; the event id
    is per giver, thing and month, so a double click counts once), 'flattr_owner' (own
    thing, or one the giver submitted for an unclaimed site: nothing recorded), 'not_found'
    (no such thing), 'not_flattrable' (an owner identity of another platform)."""
    now = now or utcnow()
    row = _owner_row(conn, thing_id)
    if row is None or row.deleted_at is not None:
        return "not_found"
    if row.owner_platform != row.platform:
        return "not_flattrable"
    if _answerable(row) == giver_uid:
        return "flattr_owner"
    _, giver_name = hub_identity(conn, giver_uid)
    event = NormalisedEvent(
        event_id=f"button:{thing_id}:{giver_uid}:{month_of(now)}", platform=row.platform,
        kind="like", actor_id=giver_name, content_id=row.content_id,
        owner_id=row.platform_user_id, occurred_at=now, url=row.url,
        title=(row.title or "")[:512] or None, actor_platform=PLATFORM)
    try:
        with conn.begin_nested():
            result = ingest(conn, [event])
    except IntegrityError:
        return "flattr_once"  # the same click, recorded by a concurrent request
    outcome = result.outcomes.get(event.key, "duplicate")
    return INGEST_OUTCOMES.get(outcome, outcome)


def flattr_and_show(conn: Connection, giver_uid: int, thing_id: int,
                    now: datetime | None = None) -> tuple[str, dict[str, Any] | None]:
    """`flattr`, then the thing as the giver now sees it (None when there is no such thing)."""
    outcome = flattr(conn, giver_uid, thing_id, now)
    return outcome, get_thing(conn, thing_id, giver_uid)


def counts(conn: Connection, thing_id: int, now: datetime | None = None) -> dict[str, int]:
    """{"month": active flattrs of the thing in the month of `now`, "all": all time}."""
    month = month_of(now or utcnow())
    active = and_(flattrs.c.thing_id == thing_id, flattrs.c.retracted_at.is_(None))
    total, this_month = conn.execute(select(
        func.count(), func.coalesce(func.sum((flattrs.c.month == month).cast(Integer)), 0))
        .where(active)).one()
    return {"month": int(this_month), "all": int(total)}


def url_counts(conn: Connection, url: str, now: datetime | None = None) -> dict[str, Any]:
    """The button counter of `url`: {"url": normalised or as given, "thing_id": id or None,
    "month": n, "all": n} (zeros for a URL no one flattred yet)."""
    thing_id = lookup_url(conn, url)
    found = counts(conn, thing_id, now) if thing_id else {"month": 0, "all": 0}
    return {"thing_id": thing_id, **found}


# --- auto-submit ------------------------------------------------------------------------------

def submit_params(query: Mapping[str, str]) -> dict[str, Any]:
    """Validate auto-submit parameters (`user_id` or `uid`, `url`, `title`, `description`,
    `language`, `tags`, `category`, `hidden`) into {"user_id", "url" (normalised), "title",
    "description", "language", "tags" (list), "category", "hidden" (bool)}. Raises InvalidThing
    naming the bad parameter."""
    user = query.get("user_id") or query.get("uid")
    if not user or not isinstance(user, str):
        raise InvalidThing("user_id is required: the Flattr Hub user who owns the URL")
    if len(user) > 64:
        raise InvalidThing("user_id is not a user name")
    params = _fields({name: query.get(name) for name in FIELDS})
    return {"user_id": user.strip(), "url": normalise(query.get("url", "")), **params}


def parse_submit_url(url: str, page_url: str | None = None) -> dict[str, Any] | None:
    """The auto-submit parameters (as `submit_params`) of a URL whose path ends in
    /submit/auto (flattr.com's or any hub's), or None when `url` is not one. A link without a
    `url` parameter stands for `page_url` (the page that carries it), as in feeds. Raises
    InvalidThing when it is one with bad parameters."""
    try:
        parts = urlsplit(url.strip())
    except (ValueError, AttributeError):
        return None
    if not parts.path.rstrip("/").endswith("/submit/auto"):
        return None
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if page_url and not query.get("url"):
        query["url"] = page_url
    return submit_params(query)


def _site_holder(conn: Connection, url: str) -> tuple[str, int | None, str | None]:
    """(host, claimer's id, claimer's name) of the site of normalised `url`."""
    host = site_of(url)
    row = conn.execute(
        select(users.c.id, users.c.name)
        .select_from(identities.join(users, users.c.id == identities.c.claimed_by))
        .where(identities.c.platform == WEB, identities.c.platform_user_id == host)).first()
    return host, (row.id if row else None), (row.name if row else None)


def submit_preview(conn: Connection, viewer_uid: int | None,
                   params: Mapping[str, Any]) -> dict[str, Any]:
    """What flattring validated auto-submit `params` would do, for the confirm page:
    {"thing": the existing thing dict or None (created on the first flattr), "owner": who the
    flattr is for (the owner's user name, or the unclaimed identity), "refusal": None,
    'unknown_user' or 'flattr_owner' (own thing), and "flattred": already flattred by the
    viewer this month}. `user_id` names the submitter only: the page's site owns it."""
    thing_id = lookup_url(conn, params["url"])
    thing = None if thing_id is None else get_thing(conn, thing_id, viewer_uid)
    submitter_uid = conn.execute(
        select(users.c.id).where(users.c.name == params["user_id"])).scalar()
    if thing is not None:
        owner_uid = thing["owner"]["uid"]
        answerable = owner_uid
        if owner_uid is None:
            answerable = conn.execute(select(thing_details.c.submitted_by).where(
                thing_details.c.thing_id == thing_id)).scalar()
        owner = thing["owner"]["username"] or _unclaimed(thing["owner"])
    else:
        host, owner_uid, owner = _site_holder(conn, params["url"])
        answerable = submitter_uid if owner_uid is None else owner_uid
        owner = owner or _unclaimed({"platform": WEB, "platform_user_id": host})
    refusal = ("unknown_user" if submitter_uid is None and thing is None
               else "flattr_owner" if viewer_uid is not None and answerable == viewer_uid
               else None)
    return {"thing": thing, "owner": owner, "refusal": refusal,
            "flattred": bool(thing and thing["flattred"])}


def _unclaimed(owner: Mapping[str, Any]) -> str:
    return (f"{owner['platform']} {owner['platform_user_id']} (not claimed on Flattr Hub yet: "
            f"flattrs wait for its owner as pledges)")


def flattr_submit(conn: Connection, giver_uid: int, params: Mapping[str, Any],
                  now: datetime | None = None) -> tuple[str, int | None]:
    """Flattr what validated auto-submit `params` (from `submit_params`) describe: the thing of
    that URL, registered on this first flattr if there is none, with user `params["user_id"]`
    as its submitter (it belongs to the site's owner, see `create_thing`). Returns (outcome,
    thing id); outcome is one of OUTCOMES or 'unknown_user' (no hub user of that name). A
    self-flattr creates nothing."""
    thing_id = lookup_url(conn, params["url"])
    if thing_id is None:
        submitter = conn.execute(
            select(users.c.id).where(users.c.name == params["user_id"])).scalar()
        if submitter is None:
            return "unknown_user", None
        _, holder, _ = _site_holder(conn, params["url"])
        if giver_uid == (submitter if holder is None else holder):
            return "flattr_owner", None
        try:
            thing_id = create_thing(conn, submitter, params["url"], params["title"],
                                    params["description"], params["category"],
                                    params["language"], params["tags"], params["hidden"])
        except Conflict:
            # created by a concurrent first flattr
            thing_id = lookup_url(conn, params["url"])
            if thing_id is None:
                raise
    return flattr(conn, giver_uid, thing_id, now), thing_id
