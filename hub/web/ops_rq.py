"""The RQ dashboard (the rq-dashboard package, a Flask app) for the hub's Redis, mounted at
/ops/rq/ behind operator login: each request is checked like every /ops page, then handed to
the Flask app through aiohttp-wsgi (on a worker thread).

The dashboard's buttons (requeue, delete, empty a queue) post with jQuery and send the cookie
`_csrf_token` back as the `X-CSRFToken` header; the cookie holds this session's CSRF token, so
those posts pass the hub's CSRF check and a post from another site does not. GET and HEAD reach
only its pages, data and static files (`READ_ONLY`); every other path is an action and is
refused unless posted (its requeue actions also answer GET). Paths reach here in their one plain
spelling (`hub.web.paths`), so `//requeue/…` or `%2Frequeue/…` cannot pass for a page."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from aiohttp import web
from aiohttp_wsgi import WSGIHandler
from redis import Redis
from rq_dashboard.cli import make_flask_app
from rq_dashboard.web import setup_rq_connection

from base.config import Settings
from base.redis_conn import socket_url
from hub.web.session import CONFIG, REDIS, csrf_token, require_operator, secure_cookies

PREFIX = "/ops/rq"
CSRF_COOKIE = "_csrf_token"
READ_ONLY = re.compile(r"/(|favicon\.ico|static/.*|[0-9]+/(view(/.*)?|data/.*)?)")
READS = ("GET", "HEAD")


def routes(app: web.Application) -> None:
    secure = secure_cookies(app[CONFIG])

    @cache
    def wsgi() -> WSGIHandler:
        # Built on an operator's first visit: Flask compiles the dashboard's routes, which would
        # otherwise cost every hub process (and every test app) about 50 ms at start.
        return WSGIHandler(dashboard_app(redis_url(app[CONFIG], app[REDIS])))

    async def dashboard(request: web.Request) -> web.StreamResponse:
        await require_operator(request)
        try:  # WSGI passes the path as Latin-1; the dashboard has no other pages
            (request.path + request.query_string).encode("latin-1")
        except UnicodeEncodeError:
            raise web.HTTPNotFound(reason="no such dashboard page") from None
        read_only = READ_ONLY.fullmatch("/" + request.match_info["path_info"]) is not None
        if (request.method in READS) != read_only or request.method not in (*READS, "POST"):
            raise web.HTTPMethodNotAllowed(request.method, ["POST"] if not read_only else READS)
        response = await wsgi().handle_request(request)
        response.set_cookie(CSRF_COOKIE, await csrf_token(request), path=PREFIX + "/",
                            samesite="Strict", secure=secure)
        return response

    async def to_slash(request: web.Request) -> web.StreamResponse:
        await require_operator(request)
        raise web.HTTPSeeOther(PREFIX + "/")

    app.router.add_get(PREFIX, to_slash)
    app.router.add_route("*", PREFIX + "/{path_info:.*}", dashboard)


def redis_url(config: Settings, redis: Redis) -> str:
    """The configured Redis, or the embedded server's socket."""
    return config.redis.url or socket_url(redis)


def dashboard_app(url: str) -> Any:
    """rq-dashboard's Flask app on the Redis at `url`, expecting to be mounted (SCRIPT_NAME)."""
    flask_app = make_flask_app(None, None, None, "")
    flask_app.config["RQ_DASHBOARD_REDIS_URL"] = url
    setup_rq_connection(flask_app)
    return flask_app
