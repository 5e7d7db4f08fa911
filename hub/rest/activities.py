"""REST v2 activities: what a user did (`type=outgoing`, the default: their flattrs) or what
happened to them (`type=incoming`: flattrs of the things they own), as Activity Streams 1.0
JSON (`application/stream+json`), newest first."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import Connection

from hub.rest import present
from hub.rest.common import ApiError, base_url, grant, paging, reply, route
from hub.rest.views import entries_json
from hub.web.session import call
from ledger import flattr_lists
from members.profiles import profile

STREAM = "application/stream+json"


def routes(app: web.Application) -> None:
    route(app, "GET", "/users/{username}/activities", user_activities)
    route(app, "GET", "/user/activities", my_activities)


async def user_activities(request: web.Request) -> web.Response:
    return await _answer(request, request.match_info["username"], None)


async def my_activities(request: web.Request) -> web.Response:
    return await _answer(request, None, (await grant(request)).user_id)


async def _answer(request: web.Request, name: str | None, uid: int | None) -> web.Response:
    kind = request.query.get("type") or "outgoing"
    if kind not in ("outgoing", "incoming"):
        raise ApiError(400, "invalid_parameters", "type must be incoming or outgoing")
    page, count = paging(request.query)
    return reply(await call(request, _activities_view, base_url(request), name, uid, kind,
                            page, count), content_type=STREAM)


def _activities_view(conn: Connection, base: str, name: str | None, uid: int | None,
                     kind: str, page: int, count: int) -> dict[str, Any]:
    who = profile(conn, name=name) if name is not None else profile(conn, uid=uid)
    if who is None:
        raise ApiError(404, "not_found", "no user has this name")
    listed = flattr_lists.given_by if kind == "outgoing" else flattr_lists.received_by
    return {"items": entries_json(conn, base, listed(conn, who.id, page, count),
                                  present.activity)}
