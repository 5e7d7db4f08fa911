"""REST v2 subscriptions (scope `flattr`): list (each with the whole thing, as the member sees
it), create (`months`: 3, 6 or 12, default 12; answered with the small thing as Flattr did and
our `subscription` beside), pause or resume (PUT: Flattr's `paused` / `started`), delete. See
ledger.subscriptions for what they do to the money."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import Connection

from catalog.things import get_thing, get_things
from hub.rest import present
from hub.rest.common import (
    ApiError,
    base_url,
    body,
    grant,
    int_param,
    no_content,
    reply,
    route,
    thing_id,
)
from hub.rest.views import Asker, things_json
from hub.web.session import call
from ledger import subscriptions
from members.apps import Grant


def routes(app: web.Application) -> None:
    route(app, "GET", "/user/subscriptions", list_subscriptions)
    path = r"/things/{id:\d{1,18}}/subscriptions"
    route(app, "POST", path, create)
    route(app, "PUT", path, toggle)
    route(app, "DELETE", path, delete)


async def list_subscriptions(request: web.Request) -> web.Response:
    token = await grant(request, "flattr")
    return reply(await call(request, _list_view, base_url(request), token))


def _list_view(conn: Connection, base: str, token: Grant) -> list[dict[str, Any]]:
    subs = subscriptions.subscriptions_of(conn, token.user_id)
    shown = things_json(conn, base, get_things(conn, [s.thing_id for s in subs]), Asker(token))
    things = {thing["id"]: thing for thing in shown}
    return [{**present.subscription(base, s, things[s.thing_id]), "thing": things[s.thing_id]}
            for s in subs if s.thing_id in things]


async def create(request: web.Request) -> web.Response:
    token = await grant(request, "flattr")
    months = int_param(await body(request), "months", 12, 3, 12)
    return reply(await call(request, _create_view, base_url(request), token.user_id,
                            thing_id(request), months))


def _create_view(conn: Connection, base: str, uid: int, tid: int,
                 months: int) -> dict[str, Any]:
    thing = get_thing(conn, tid)
    if thing is None:
        raise ApiError(404, "not_found", "no such thing")
    sub = subscriptions.subscribe(conn, uid, tid, months)
    return {"message": "ok", "description": "Successfully subscribed to Thing",
            "thing": present.small_thing(base, thing),
            "subscription": present.subscription(base, sub, thing)}


async def toggle(request: web.Request) -> web.Response:
    token = await grant(request, "flattr")
    sub = await call(request, subscriptions.toggle, token.user_id, thing_id(request))
    return reply({"message": "started" if sub.active else "paused", "active": sub.active,
                  "description": "Subscription started" if sub.active
                  else "Subscription paused"})


async def delete(request: web.Request) -> web.Response:
    token = await grant(request, "flattr")
    await call(request, subscriptions.unsubscribe, token.user_id, thing_id(request))
    return no_content()
