"""Notification pages: a member's settings (`/settings/notifications`: be e-mailed when someone
they pledged to joins), and the opt-out link of creators' notices
(`/notifications/optout/{token}`: GET asks for confirmation, POST records it)."""

from __future__ import annotations

from aiohttp import web

from hub.web.session import CONFIG, call, render, require_member
from notifications.optout import OptOutError, opt_out, optout_target
from notifications.settings import set_pledgee_joined, settings_of

SETTINGS = "/settings/notifications"


def routes(app: web.Application) -> None:
    app.router.add_get(SETTINGS, settings_page)
    app.router.add_post(SETTINGS, save_settings)
    app.router.add_get("/notifications/optout/{token}", optout_page)
    app.router.add_post("/notifications/optout/{token}", confirm_optout)


async def settings_page(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    settings = await call(request, settings_of, me.id)
    notice = "Saved." if request.query.get("saved") else None
    return await render(request, "notification_settings.html",
                        {"settings": settings, "notice": notice})


async def save_settings(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    await call(request, set_pledgee_joined, me.id, form.get("pledgee_joined") == "on")
    raise web.HTTPSeeOther(f"{SETTINGS}?saved=1")


async def optout_page(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    try:
        target = await call(request, optout_target, request.app[CONFIG], token)
    except OptOutError as exc:
        return await render(request, "notification_optout.html", {"error": str(exc)}, 404)
    return await render(request, "notification_optout.html",
                        {"target": target, "token": token})


async def confirm_optout(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    try:
        target = await call(request, opt_out, request.app[CONFIG], token)
    except OptOutError as exc:
        return await render(request, "notification_optout.html", {"error": str(exc)}, 404)
    return await render(request, "notification_optout.html",
                        {"target": target, "notice": "Done: you will not hear from us again."})
