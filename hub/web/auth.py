"""Sign up, log in, log out, and the front page."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hub.web.email import deliver
from hub.web.session import (
    CONFIG,
    REDIS,
    call,
    client_address,
    current_member,
    local_path,
    render,
    sign_in,
    sign_out,
)
from hub.web.throttle import Throttle
from ledger.errors import LedgerError
from members.emails import sign_up_with_email
from members.logins import authenticate


def routes(app: web.Application) -> None:
    app.router.add_get("/", front_page)
    app.router.add_get("/signup", signup_form)
    app.router.add_post("/signup", signup)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)


async def front_page(request: web.Request) -> web.StreamResponse:
    if await current_member(request) is not None:
        raise web.HTTPSeeOther("/dashboard")
    return await render(request, "front.html", {})


async def signup_form(request: web.Request) -> web.StreamResponse:
    return await render(request, "signup.html", {"form": {}})


async def signup(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name, email = str(form.get("name", "")).strip(), str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    try:
        uid, mail = await call(request, sign_up_with_email, request.app[CONFIG], name, password,
                               email or None)
    except LedgerError as exc:
        return await render(
            request, "signup.html", {"error": str(exc), "form": {"name": name, "email": email}},
            status=400)
    await deliver(request, mail)
    await sign_in(request, uid)
    raise web.HTTPSeeOther("/dashboard")


async def login_form(request: web.Request) -> web.StreamResponse:
    return await render(request, "login.html",
                        {"next": local_path(request.query.get("next")), "name": ""})


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    target = local_path(str(form.get("next", "")))
    throttle = Throttle(request.app[REDIS], request.app[CONFIG])
    address = client_address(request)
    loop = asyncio.get_running_loop()
    attempt = await loop.run_in_executor(None, throttle.attempt, name, address)
    if attempt.refused:
        refused = await _login_refused(request, name, target, 429, "Too many failed attempts. "
                                       "Wait a few minutes and try again.")
        refused.headers["Retry-After"] = str(attempt.retry_after)
        return refused
    await asyncio.sleep(attempt.delay)
    uid = await call(request, authenticate, name, password)
    if uid is None:
        return await _login_refused(request, name, target, 400, "Wrong name or password.")
    await loop.run_in_executor(None, throttle.succeeded, name, address)
    await sign_in(request, uid)
    raise web.HTTPSeeOther(target)


async def logout(request: web.Request) -> web.StreamResponse:
    await sign_out(request)
    raise web.HTTPSeeOther("/")


async def _login_refused(request: web.Request, name: str, target: str, status: int,
                         message: str) -> web.StreamResponse:
    return await render(request, "login.html",
                        {"error": message, "name": name, "next": target}, status=status)
