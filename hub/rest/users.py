"""REST v2 users: a user by name and the authenticated user (`email` with the `email` or
`extendedread` scope, `registered_at` with `extendedread`), and their things."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import Connection

from hub.rest import present
from hub.rest.common import (
    ApiError,
    asker,
    base_url,
    grant,
    paging,
    reply,
    route,
    wants_full,
)
from hub.rest.things import owned_things_view
from hub.rest.views import Asker
from hub.web.session import call
from members.apps import Grant
from members.profiles import profile


def routes(app: web.Application) -> None:
    route(app, "GET", "/users/{username}", get_user)
    route(app, "GET", "/users/{username}/things", user_things)
    route(app, "GET", "/user", me)
    route(app, "GET", "/user/things", my_things)


async def get_user(request: web.Request) -> web.Response:
    return reply(await call(request, _user_view, base_url(request),
                            request.match_info["username"], None))


async def me(request: web.Request) -> web.Response:
    token = await grant(request)
    return reply(await call(request, _user_view, base_url(request), None, token))


def _user_view(conn: Connection, base: str, name: str | None,
               token: Grant | None) -> dict[str, Any]:
    who = profile(conn, name=name) if token is None else profile(conn, uid=token.user_id)
    if who is None:
        raise ApiError(404, "not_found", "no user has this name")
    scopes = token.scopes if token is not None else frozenset()
    return present.user(base, who, email="email" in scopes,
                        extended="extendedread" in scopes)


async def user_things(request: web.Request) -> web.Response:
    page, count = paging(request.query)
    return reply(await call(request, _things_view, base_url(request),
                            request.match_info["username"], None, page, count,
                            await asker(request)))


async def my_things(request: web.Request) -> web.Response:
    token = await grant(request)
    page, count = paging(request.query)
    return reply(await call(request, _things_view, base_url(request), None, token.user_id,
                            page, count, Asker(token, wants_full(request))))


def _things_view(conn: Connection, base: str, name: str | None, uid: int | None, page: int,
                 count: int, who: Asker) -> list[dict[str, Any]]:
    owner = profile(conn, name=name) if name is not None else profile(conn, uid=uid)
    if owner is None:
        raise ApiError(404, "not_found", "no user has this name")
    return owned_things_view(conn, base, owner.id, page, count, who)
