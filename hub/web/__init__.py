"""The web hub for people: server-rendered pages (aiohttp-jinja2) on the same aiohttp app as
the webhooks. `install` wires templates, encrypted cookie sessions, CSRF checks and each
feature module's routes (each path in one plain spelling only: `hub.web.paths`); every feature
module has a `routes(app)` function."""

from __future__ import annotations

from functools import partial
from importlib import import_module
from pathlib import Path

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from redis import Redis
from sqlalchemy import Engine

from base.config import Settings
from base.vault import web_keys
from hub.inputs import form_bodies
from hub.web import session
from hub.web.amounts import money_filter, units
from hub.web.paths import plain_paths
from ledger.validation import is_web_url

FEATURES = ("hub.web.auth", "hub.web.notifications", "hub.web.money", "hub.web.dashboard",
            "hub.web.public", "hub.web.sites", "hub.web.ops", "hub.web.ops_rq",
            "hub.web.things", "hub.web.oauth", "hub.rest", "hub.web.accounts",
            "hub.web.contests", "hub.web.webhooks", "hub.web.security",
            "hub.web.email", "hub.web.ops_quarantine", "hub.web.bluesky")
STATIC = Path(__file__).with_name("static")


def install(app: web.Application, config: Settings, engine: Engine,
            redis: Redis) -> None:
    """Add the pages, sessions and CSRF protection to the hub application."""
    app[session.CONFIG] = config
    app[session.ENGINE] = engine
    app[session.REDIS] = redis
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("hub.web", "templates"), autoescape=True)
    env.filters["money"] = money_filter(config.currency)
    env.filters["units"] = units  # an amount as typed in a form
    env.tests["web_url"] = is_web_url  # `{% if x is web_url %}`: only http(s) become links
    sessions = aiohttp_session.session_middleware(EncryptedCookieStorage(
        web_keys(config)["session_key"].decode(), cookie_name="flattr_session", httponly=True,
        samesite="Lax", secure=session.secure_cookies(config),
        max_age=config.web.session_max_seconds))
    app.middlewares.append(
        except_webhooks(sessions, plain_paths, form_bodies, session.csrf_protect))
    app.router.add_static("/static/", STATIC, name="static")
    for name in FEATURES:
        import_module(name).routes(app)


def except_webhooks(*middlewares: Middleware) -> Middleware:
    """One middleware that runs `middlewares` for every path but the webhooks', which need no
    session or CSRF check: the webhook path stays as short as it was before there were pages."""
    @web.middleware
    async def pages(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/webhooks/"):
            return await handler(request)
        for middleware in reversed(middlewares):
            handler = partial(middleware, handler=handler)
        return await handler(request)
    return pages
