"""REST v2 flattrs: flattr a thing or a URL (scope `flattr`), and the lists of a user's
flattrs. A URL is the thing's own, an auto-submit URL (its thing is created on this first
flattr), or a page whose `rel="payment"` link names an auto-submit URL (discovery)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from aiohttp import web
from sqlalchemy import Connection

from base.config import Settings
from catalog import things as catalog
from hub.rest import present
from hub.rest.common import (
    ApiError,
    base_url,
    body,
    grant,
    paging,
    reply,
    route,
    text_param,
    thing_id,
    wants_full,
)
from hub.rest.things import discovered, thing_of_url
from hub.rest.views import flattrs_json
from hub.web.session import CONFIG, call
from ledger import flattr_lists
from ledger.sql import utcnow
from members.profiles import has_means, profile

REFUSED = {
    "flattr_once": (403, "flattr_once", "you have already flattred this thing this month"),
    "flattr_owner": (403, "flattr_owner", "you cannot flattr your own thing"),
    "not_found": (404, "not_found", "no such thing"),
    "not_flattrable": (400, "invalid_request", "this thing is flattred on its own platform"),
    "unknown_user": (404, "not_found", "the auto-submit URL names no user of this hub"),
}


def routes(app: web.Application) -> None:
    route(app, "POST", r"/things/{id:\d{1,18}}/flattr", flattr_thing)
    route(app, "POST", "/flattr", flattr_url)
    route(app, "GET", "/users/{username}/flattrs", user_flattrs)
    route(app, "GET", "/user/flattrs", my_flattrs)


async def flattr_thing(request: web.Request) -> web.Response:
    token = await grant(request, "flattr")
    return reply(await call(request, _flattr_view, base_url(request), request.app[CONFIG],
                            token.user_id, thing_id(request)))


async def flattr_url(request: web.Request) -> web.Response:
    token = await grant(request, "flattr")
    url = text_param(await body(request), "url", required=True)
    target = (await call(request, _target_view, url, base_url(request))
              or await discovered(request, url))
    if target is None:
        raise ApiError(404, "not_found", "no thing has this URL")
    return reply(await call(request, _flattr_view, base_url(request), request.app[CONFIG],
                            token.user_id, target))


def _target_view(conn: Connection, url: str, base: str) -> int | dict[str, Any] | None:
    """The auto-submit parameters of an auto-submit URL, else the id of the URL's thing."""
    submitted = catalog.parse_submit_url(url)
    return submitted if submitted is not None else thing_of_url(conn, url, base)


def _flattr_view(conn: Connection, base: str, config: Settings, uid: int,
                 target: int | Mapping[str, Any]) -> dict[str, Any]:
    """Flattr thing `target`, or what the auto-submit parameters `target` describe, as user
    `uid`."""
    if isinstance(target, int) and catalog.get_thing(conn, target) is None:
        _refuse("not_found")
    if not has_means(conn, uid, config):
        raise ApiError(401, "no_means", "you have no means to flattr with: set a monthly "
                                        "amount and add funds")
    now = utcnow()
    tid: int | None
    if isinstance(target, int):
        outcome, tid = catalog.flattr(conn, uid, target, now), target
    else:
        outcome, tid = catalog.flattr_submit(conn, uid, target, now)
    if outcome not in ("flattred", "pledged") or tid is None:
        _refuse(outcome)
    thing = catalog.get_thing(conn, tid)
    if thing is None:
        _refuse("not_found")
    return {"message": "ok", "description": "Thing was successfully flattred",
            "thing": present.small_thing(base, thing),
            "location": present.thing_resource(base, tid)}


def _refuse(outcome: str) -> NoReturn:
    status, code, description = REFUSED.get(outcome, (400, "invalid_request",
                                                      "the request is invalid"))
    raise ApiError(status, code, description)


async def user_flattrs(request: web.Request) -> web.Response:
    page, count = paging(request.query)
    return reply(await call(request, _flattrs_view, base_url(request),
                            request.match_info["username"], None, page, count,
                            wants_full(request)))


async def my_flattrs(request: web.Request) -> web.Response:
    token = await grant(request)
    page, count = paging(request.query)
    return reply(await call(request, _flattrs_view, base_url(request), None, token.user_id,
                            page, count, wants_full(request)))


def _flattrs_view(conn: Connection, base: str, name: str | None, uid: int | None,
                  page: int, count: int, full: bool) -> list[dict[str, Any]]:
    who = profile(conn, name=name) if name is not None else profile(conn, uid=uid)
    if who is None:
        raise ApiError(404, "not_found", "no user has this name")
    return flattrs_json(conn, base, flattr_lists.given_by(conn, who.id, page, count), full)
