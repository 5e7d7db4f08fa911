"""REST v2 things: get one or several, look a URL up, search, create, update, delete, and a
thing's flattrs. Creating, updating and deleting need the `thing` scope; hidden things show in
lists only to their owner's token with `extendedread`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from sqlalchemy import Connection

from catalog import things as catalog
from catalog.errors import CatalogError, InvalidThing
from catalog.lookups import Busy, FetchGate
from hub.rest import present
from hub.rest.common import (
    ApiError,
    asker,
    base_url,
    body,
    grant,
    no_content,
    paging,
    reply,
    route,
    text_param,
    thing_id,
    wants_full,
)
from hub.rest.views import Asker, flattrs_json, things_json
from hub.web.session import CONFIG, call
from ledger import flattr_lists
from members.profiles import profile

FIELDS = ("title", "description", "category", "language", "tags", "hidden")
# Flattr's sort names → the catalog's (trend is the last 7 days, Flattr's flattrs_week).
SORTS = {"relevance": "trend", "trend": "trend", "flattrs_week": "trend", "flattrs_day": "trend",
         "flattrs": "flattrs_all", "flattrs_month": "flattrs_month"}
LOOKUPS = web.AppKey("lookups", FetchGate)
NOT_FOUND = {"message": "not_found", "description": "No thing was found"}


def routes(app: web.Application) -> None:
    app[LOOKUPS] = FetchGate()
    route(app, "GET", "/things/lookup", lookup)
    route(app, "GET", "/things/search", search)
    route(app, "GET", r"/things/{ids:\d{1,18}(?:,\d{1,18}){0,99}}", get_things)
    route(app, "POST", "/things", create)
    route(app, "PATCH", r"/things/{id:\d{1,18}}", update)
    route(app, "POST", r"/things/{id:\d{1,18}}", update)  # Flattr's `_method=patch`
    route(app, "DELETE", r"/things/{id:\d{1,18}}", delete)
    route(app, "GET", r"/things/{id:\d{1,18}}/flattrs", thing_flattrs)


async def get_things(request: web.Request) -> web.Response:
    ids = [int(part) for part in request.match_info["ids"].split(",")]
    found = await call(request, _things_view, base_url(request), ids, await asker(request))
    if not found:
        raise ApiError(404, "not_found", "the requested thing(s) could not be found")
    return reply(found[0] if len(ids) == 1 else found)


def _things_view(conn: Connection, base: str, ids: list[int],
                 who: Asker) -> list[dict[str, Any]]:
    return things_json(conn, base, catalog.get_things(conn, ids), who)


async def lookup(request: web.Request) -> web.Response:
    url = text_param(request.query, "url", required=True)
    tid = await find_thing(request, url)
    if tid is None:
        raise ApiError(404, "not_found", NOT_FOUND["description"], NOT_FOUND)
    location = present.thing_resource(base_url(request), tid)
    answer = reply({"message": "found", "location": location}, status=302)
    answer.headers["Location"] = location
    return answer


async def find_thing(request: web.Request, url: str) -> int | None:
    """The thing a URL designates (`thing_of_url`), or, for a page the hub does not know, the
    thing of the URL its `rel="payment"` link names (discovery)."""
    tid = await call(request, thing_of_url, url, base_url(request))
    if tid is not None:
        return tid
    params = await discovered(request, url)
    if params is None or not params.get("url"):
        return None
    return await call(request, thing_of_url, str(params["url"]), base_url(request))


async def discovered(request: web.Request, url: str) -> dict[str, Any] | None:
    """The auto-submit parameters of the page's payment link, or None (no link, or the page
    could not be fetched). Fetches are bounded and cached (`catalog.lookups`): over a limit,
    429 or 503 at once."""
    try:
        return await request.app[LOOKUPS].discover(url, request.app[CONFIG],
                                                   request.remote or "unknown")
    except Busy as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None
    except CatalogError:
        return None


def thing_of_url(conn: Connection, url: str, base: str) -> int | None:
    """The live thing of every URL the API shows: one of this hub's own links to a thing (its
    page, its API resource), the thing's `url` (catalog.lookup_url), or the `url` of an
    auto-submit URL."""
    for prefix in (present.thing_link(base, 0)[:-1], present.thing_resource(base, 0)[:-1]):
        number = url.removeprefix(prefix)
        if number != url and number.isdigit() and len(number) <= 18:
            return int(number) if catalog.get_thing(conn, int(number)) is not None else None
    submitted = catalog.parse_submit_url(url)
    return catalog.lookup_url(conn, str(submitted["url"]) if submitted else url)


async def search(request: web.Request) -> web.Response:
    query = request.query
    page, count = paging(query)
    sort = SORTS.get(query.get("sort") or "relevance")
    if sort is None:
        raise ApiError(400, "invalid_parameters", "sort must be one of " + ", ".join(SORTS))
    criteria = {"query": text_param(query, "query"), "category": text_param(query, "category"),
                "language": text_param(query, "language"), "tags": text_param(query, "tags"),
                "url": text_param(query, "url"), "user": text_param(query, "user"),
                "sort": sort, "page": page, "count": count}
    return reply(await call(request, _search_view, base_url(request), criteria,
                            await asker(request)))


def _search_view(conn: Connection, base: str, criteria: dict[str, Any],
                 who: Asker) -> dict[str, Any]:
    owner_uid = None
    if criteria["user"] is not None:
        owner = profile(conn, name=criteria["user"])
        if owner is None:
            return {"total_items": 0, "items": 0, "page": criteria["page"], "things": []}
        owner_uid = owner.id
    if criteria["url"] is not None:
        tid = thing_of_url(conn, criteria["url"], base)
        found = [] if tid is None else catalog.get_things(conn, [tid])
        found = [t for t in found if not t.get("hidden")]
        result: dict[str, Any] = {"total_items": len(found), "items": len(found), "page": 1,
                                  "things": found}
    else:
        result = catalog.search(
            conn, criteria["query"], criteria["category"], criteria["language"],
            criteria["tags"], criteria["sort"], criteria["page"], criteria["count"],
            owner_uid=owner_uid)
    return {**result, "things": things_json(conn, base, result["things"], who)}


def owned_things_view(conn: Connection, base: str, owner_uid: int, page: int, count: int,
                      who: Asker) -> list[dict[str, Any]]:
    """A user's things; hidden ones only for their own token with `extendedread`."""
    token = who.grant
    hidden = (token is not None and token.user_id == owner_uid
              and "extendedread" in token.scopes)
    found = catalog.search(conn, page=page, count=count, owner_uid=owner_uid,
                           include_hidden=hidden)
    return things_json(conn, base, found["things"], who)


async def create(request: web.Request) -> web.Response:
    token = await grant(request, "thing")
    values = await body(request)
    url = text_param(values, "url", required=True)
    fields = _fields(values)
    try:
        tid = await call(request, catalog.create_thing, token.user_id, url, **fields)
    except InvalidThing as exc:
        raise _invalid(exc) from None
    return reply({"id": tid, "link": present.thing_resource(base_url(request), tid),
                  "message": "ok", "description": "Thing was created successfully"}, 201)


async def update(request: web.Request) -> web.Response:
    values = await body(request)
    if request.method == "POST" and str(values.get("_method", "")).lower() != "patch":
        raise ApiError(405, "method_not_allowed", "POST to a thing needs _method=patch")
    token = await grant(request, "thing")
    try:
        await call(request, catalog.update_thing, thing_id(request), token.user_id,
                   **_fields(values))
    except InvalidThing as exc:
        raise _invalid(exc) from None
    return reply({"message": "ok", "description": "Thing was updated correctly"})


async def delete(request: web.Request) -> web.Response:
    token = await grant(request, "thing")
    await call(request, catalog.delete_thing, thing_id(request), token.user_id)
    return no_content()


def _invalid(exc: InvalidThing) -> ApiError:
    """Flattr's answer to a thing that does not validate: 400 `validation`."""
    return ApiError(400, "validation", str(exc))


def _fields(values: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in FIELDS:
        value = values.get(name)
        if value is None:
            continue
        if name == "hidden":
            fields[name] = _boolean(value)
        elif name == "tags" and isinstance(value, list):
            if not all(isinstance(tag, str) for tag in value):
                raise ApiError(400, "validation", "tags must be strings")
            fields[name] = value
        elif isinstance(value, str):
            fields[name] = value
        else:
            raise ApiError(400, "validation", f"{name} must be a string")
    return fields


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("1", "true", "0", "false"):
        return value.lower() in ("1", "true")
    raise ApiError(400, "validation", "hidden must be true or false")


async def thing_flattrs(request: web.Request) -> web.Response:
    page, count = paging(request.query)
    return reply(await call(request, _thing_flattrs_view, base_url(request), thing_id(request),
                            page, count, wants_full(request)))


def _thing_flattrs_view(conn: Connection, base: str, tid: int, page: int,
                        count: int, full: bool) -> list[dict[str, Any]]:
    if catalog.get_thing(conn, tid) is None:
        raise ApiError(404, "not_found", "no such thing")
    return flattrs_json(conn, base, flattr_lists.of_thing(conn, tid, page, count), full)
