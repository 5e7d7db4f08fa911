"""Who is asking: the signed-in member of the server-side session the encrypted cookie refers
to (`members.sessions`), guards for pages that need a member or an operator, the CSRF token
every form carries, rendering pages (`render`) and running domain functions off the event loop
(`call`)."""

from __future__ import annotations

import asyncio
import contextvars
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session
from redis import Redis
from sqlalchemy import Connection, Engine

from base import links
from base.config import Settings
from members.logins import Member
from members.sessions import Lifetimes, end_session, session_member, start_session

CONFIG = web.AppKey("web_config", Settings)
ENGINE = web.AppKey("web_engine", Engine)
REDIS = web.AppKey("web_redis", Redis)
MEMBER = "member"
SID = "sid"  # the cookie's key for the server-side session id (members.sessions)
MAX_NEXT = 2000
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Machine-to-machine endpoints authenticate by signature or bearer token, not by cookie.
CSRF_EXEMPT = ("/webhooks/", "/rest/", "/oauth/token", "/oauth/revoke", "/metrics")

P = ParamSpec("P")
T = TypeVar("T")


async def call(request: web.Request, fn: Callable[Concatenate[Connection, P], T],
               *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn(conn, *args, **kwargs)` in one transaction on a worker thread (which sees the
    request's context variables: its request id is logged and given to the jobs it enqueues)."""
    engine = request.app[ENGINE]

    def run() -> T:
        with engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    return await asyncio.get_running_loop().run_in_executor(
        None, contextvars.copy_context().run, run)


def lifetimes(config: Settings) -> Lifetimes:
    """How long a web session lasts unused (`web.session_idle_seconds`) and at most
    (`web.session_max_seconds`)."""
    return Lifetimes(config.web.session_idle_seconds,
                     config.web.session_max_seconds)


async def current_member(request: web.Request) -> Member | None:
    """The signed-in member of the cookie's server-side session, looked up once per request; a
    cookie whose session ended (logout, password change, lifetimes) is forgotten."""
    if MEMBER not in request:
        cookie = await get_session(request)
        sid = cookie.get(SID)
        found = None
        if isinstance(sid, str):
            found = await call(request, session_member, sid, lifetimes(request.app[CONFIG]))
            if found is None:
                del cookie[SID]
        request[MEMBER] = found
    return request[MEMBER]


async def session_id(request: web.Request) -> str:
    """The id of the signed-in member's session (call after `require_member`)."""
    return str((await get_session(request))[SID])


async def require_member(request: web.Request) -> Member:
    """The signed-in member; otherwise a redirect to the login page that comes back here."""
    found = await current_member(request)
    if found is None:
        raise web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}))
    return found


async def require_operator(request: web.Request) -> Member:
    """The signed-in operator; 403 for other members."""
    found = await require_member(request)
    if not found.operator:
        raise web.HTTPForbidden(reason="operators only")
    return found


async def sign_in(request: web.Request, uid: int) -> None:
    """Start a fresh server-side session for `uid` in a new cookie (so a planted cookie is
    useless), with a new CSRF token; the browser's previous session ends."""
    previous = (await get_session(request)).get(SID)
    sid = await call(request, start_session, uid, lifetimes(request.app[CONFIG]),
                     previous if isinstance(previous, str) else None)
    fresh = await new_session(request)
    fresh[SID] = sid
    fresh["csrf"] = secrets.token_urlsafe(32)
    request.pop(MEMBER, None)


async def sign_out(request: web.Request) -> None:
    """End the session on the server too: the cookie, even saved, opens nothing any more."""
    cookie = await get_session(request)
    sid = cookie.get(SID)
    if isinstance(sid, str):
        await call(request, end_session, sid)
    cookie.invalidate()
    request.pop(MEMBER, None)


async def csrf_token(request: web.Request) -> str:
    current = await get_session(request)
    if "csrf" not in current:
        current["csrf"] = secrets.token_urlsafe(32)
    return current["csrf"]


def local_path(target: str | None, default: str = "/dashboard") -> str:
    """`target` when it is a path on this site, else `default` (no open redirects).

    Decided on the text as a browser will read it: anything but printable ASCII (browsers drop
    tabs and newlines, so `/<TAB>/evil.example` would become `//evil.example`), backslashes
    (read as slashes), a scheme or a host, or a second leading slash sends to `default`."""
    if (not target or len(target) > MAX_NEXT or not target.startswith("/")
            or target.startswith("//") or "\\" in target
            or any(not "!" <= char <= "~" for char in target)):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


@web.middleware
async def csrf_protect(request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
    """Refuse a state-changing form post whose `csrf_token` is not this session's."""
    routed = request.match_info.http_exception is None  # unknown paths answer 404/405 first
    if routed and request.method in UNSAFE and not request.path.startswith(CSRF_EXEMPT):
        # X-CSRFToken is what the RQ dashboard's scripts send (from the cookie /ops/rq sets).
        sent: object = (request.headers.get("X-CSRF-Token")
                        or request.headers.get("X-CSRFToken"))
        if sent is None and request.content_type in (
                "application/x-www-form-urlencoded", "multipart/form-data"):
            sent = (await request.post()).get("csrf_token")
        expected = (await get_session(request)).get("csrf")
        if not expected or not isinstance(sent, str) or not secrets.compare_digest(
                sent.encode("utf-8", "replace"), str(expected).encode()):
            raise web.HTTPForbidden(reason="the form has expired or did not come from this site; "
                                           "reload the page and try again")
    return await handler(request)


async def render(request: web.Request, template: str, context: Mapping[str, Any],
                 status: int = 200) -> web.Response:
    """Render a page; every template also sees the member (`me`) and the form `csrf_token`."""
    return aiohttp_jinja2.render_template(template, request, {
        **context, "me": await current_member(request), "csrf_token": await csrf_token(request)},
        status=status)


def secure_cookies(config: Settings) -> bool:
    """Secure cookies when served over https (`web.secure_cookies`: auto, true or false)."""
    setting = config.web.secure_cookies.lower()
    if setting == "auto":
        return links.https(config)
    return setting in ("true", "1", "yes", "on")


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"

