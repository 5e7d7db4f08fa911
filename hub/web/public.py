"""Public pages, no sign-in needed: a member's profile (`/u/<name>`) and the page of an
identity's waiting pledges with how to claim them (`/claim/<platform>/<platform user id>`)."""

from __future__ import annotations

from aiohttp import web

from hub.inputs import safe_reason
from hub.web.dashboard import settles_on
from hub.web.session import CONFIG, call, render
from ledger.errors import NotFound
from ledger.pledges import waiting_for_identity
from ledger.public_profiles import public_profile
from members.sites import PLATFORM as WEB


def routes(app: web.Application) -> None:
    app.router.add_get("/u/{name}", profile_page)
    app.router.add_get("/claim/{platform}/{platform_user_id:.+}", claim_page)


async def profile_page(request: web.Request) -> web.StreamResponse:
    try:
        shown = await call(request, public_profile, request.match_info["name"])
    except NotFound as exc:
        raise web.HTTPNotFound(reason=safe_reason(exc)) from None
    return await render(request, "profile.html", {"profile": shown})


async def claim_page(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    try:
        waiting = await call(request, waiting_for_identity, request.match_info["platform"],
                             request.match_info["platform_user_id"], config.money)
    except NotFound as exc:
        raise web.HTTPNotFound(reason=safe_reason(exc)) from None
    return await render(request, "claim.html", {
        "w": waiting, "web": waiting.platform == WEB, "min_monthly": config.min_monthly,
        "give_to_get": config.give_to_get,
        "settles_on": lambda month: settles_on(config, month)})
