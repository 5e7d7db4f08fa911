"""REST v2 subscriptions (scope `flattr`): list, create (`months`: 3, 6 or 12, default 12),
pause or resume (PUT), delete. See ledger.subscriptions for what they do to the money."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import Connection

from catalog.things import get_thing, get_things
from hub.rest import present
from hub.rest.common import PREFIX, ApiError, base_url, body, grant, int_param, reply, thing_id
from hub.web.session import call
from ledger import subscriptions


def routes(app: web.Application) -> None:
    app.router.add_get(PREFIX + "/user/subscriptions", list_subscriptions)
    path = PREFIX + r"/things/{id:\d{1,18}}/subscriptions"
    app.router.add_post(path, create)
    app.router.add_put(path, toggle)
    app.router.add_delete(path, delete)


async def list_subscriptions(request: web.Request) -> web.Response:
    token = await grant(request, "flattr")
    return reply(await call(request, _list_view, base_url(request), token.user_id))


def _list_view(conn: Connection, base: str, uid: int) -> list[dict[str, Any]]:
    subs = subscriptions.subscriptions_of(conn, uid)
    things = {int(t["id"]): t for t in get_things(conn, [s.thing_id for s in subs])}
    return [present.subscription(base, s, things[s.thing_id]) for s in subs
            if s.thing_id in things]


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
    return {"message": "ok", "description": "Subscribed to the thing",
            "subscription": present.subscription(base, sub, thing)}


async def toggle(request: web.Request) -> web.Response:
    token = await grant(request, "flattr")
    sub = await call(request, subscriptions.toggle, token.user_id, thing_id(request))
    return reply({"message": "ok", "active": sub.active,
                  "description": "Subscription started" if sub.active
                  else "Subscription paused"})


async def delete(request: web.Request) -> web.Response:
    token = await grant(request, "flattr")
    await call(request, subscriptions.unsubscribe, token.user_id, thing_id(request))
    return web.Response(status=204)
