"""The member's security page (`/settings/security`): their sessions with "log out other
sessions", changing the password (which ends every other session; attempts throttled as logins
are), and the applications they authorized, each revocable."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp_session import get_session

from hub.web.session import (
    CONFIG,
    REDIS,
    call,
    client_address,
    render,
    require_member,
    session_id,
    sign_in,
)
from hub.web.throttle import Throttle
from ledger.errors import LedgerError
from members.apps import revoke_authorization
from members.logins import Member, change_password
from members.security import overview
from members.sessions import end_other_sessions

PAGE = "/settings/security"
FLASH = "security_flash"


def routes(app: web.Application) -> None:
    app.router.add_get(PAGE, security_page)
    app.router.add_post(PAGE + "/password", new_password)
    app.router.add_post(PAGE + "/logout-others", logout_others)
    app.router.add_post(PAGE + r"/apps/{app:\d{1,18}}/revoke", revoke_app)


async def security_page(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    return await _page(request, me, notice=(await get_session(request)).pop(FLASH, None))


async def new_password(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    throttle = Throttle(request.app[REDIS], request.app[CONFIG])  # guessing the current one
    attempt = await asyncio.get_running_loop().run_in_executor(
        None, throttle.attempt, me.name, client_address(request))
    if attempt.refused:
        return await _page(request, me, error="Too many attempts. Wait a few minutes and try "
                           "again.", status=429)
    await asyncio.sleep(attempt.delay)
    try:
        await call(request, change_password, me.id, str(form.get("current", "")),
                   str(form.get("password", "")))
    except LedgerError as exc:
        return await _page(request, me, error=str(exc), status=400)
    await sign_in(request, me.id)  # every session ended; this browser gets a new one
    await _flash(request, "Password changed. Every other session is logged out.")
    raise web.HTTPSeeOther(PAGE)


async def logout_others(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    ended = await call(request, end_other_sessions, me.id, await session_id(request))
    await _flash(request, f"Logged out {ended} other session{'s' if ended != 1 else ''}.")
    raise web.HTTPSeeOther(PAGE)


async def revoke_app(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    if not await call(request, revoke_authorization, me.id, int(request.match_info["app"])):
        raise web.HTTPNotFound(reason="you have not authorized that application")
    await _flash(request, "Access revoked: the application's tokens no longer work.")
    raise web.HTTPSeeOther(PAGE)


async def _flash(request: web.Request, message: str) -> None:
    (await get_session(request))[FLASH] = message


async def _page(request: web.Request, me: Member, status: int = 200,
                **messages: str | None) -> web.StreamResponse:
    return await render(request, "security.html", {
        "overview": await call(request, overview, me.id, await session_id(request)),
        **messages}, status)
