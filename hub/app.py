"""The aiohttp application: `POST /webhooks/{platform}`, `GET /healthz`, `GET /readyz`,
`GET /metrics`, and the web pages for people (`hub.web`).

Handlers only translate HTTP: reading the body (bounded by `hub.max_body_bytes`, else 413),
calling `Intake.receive`, and writing JSON. Every error answer is JSON
`{"error": ..., "error_description": ...}`, unknown paths and methods included (a browser asking
for a page gets the same as an HTML page); client mistakes never get a 5xx. Platform-specific
routes (X's CRC check, Discord interactions) come from
`hub.platform_routes`. `serve` answers the generic webhooks before the application
(`WebhookShortcut`), with the same answers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any, cast

import orjson
import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware
from redis import Redis
from sqlalchemy import Engine

from base.config import Settings
from connectors.registry import enabled_connectors
from hub import metrics, security_headers
from hub.committer import GroupCommit
from hub.inbox_writer import InboxWriter
from hub.intake import Intake, Rejected
from hub.platform_routes import add_platform_routes
from hub.request_id import HEADER as REQUEST_ID_HEADER
from hub.request_id import REQUEST_ID, assign_request_id
from hub.status import health
from hub.web import install as install_web
from hub.web.errors import error_page, wants_html
from pipeline import inbox
from pipeline.queues import wake

INTAKE = web.AppKey("intake", Intake)
CHECK: web.AppKey[Callable[[], dict[str, Any]]] = web.AppKey("check")
ERRORS = {400: "invalid_request", 401: "invalid_signature", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "payload_too_large"}

log = structlog.get_logger(__name__)


def create_app(config: Settings, engine: Engine, redis: Redis) -> web.Application:
    """The hub application. Raises ValueError naming a connector key whose value is unusable."""
    hub = config.hub
    writer = InboxWriter(engine)
    committer: GroupCommit[inbox.Entry] = GroupCommit(
        writer, partial(wake, redis),
        max_batch=hub.inbox_batch, wait=hub.inbox_wait_ms / 1000)
    secure = security_headers.adder(config)
    app = web.Application(client_max_size=hub.max_body_bytes, middlewares=[answering(secure)])
    app[INTAKE] = Intake(config, enabled_connectors(config), committer)
    app[CHECK] = lambda: health(engine, redis, config)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        committer.start()
        yield
        await committer.close()
        writer.close()

    app.cleanup_ctx.append(lifecycle)
    add_platform_routes(app, config, engine)
    app.router.add_post(r"/webhooks/{platform:[a-z][a-z0-9_-]{0,31}}", webhook)
    app.router.add_get("/healthz", healthz)
    metrics.install(app, engine, redis, config.metrics.token)
    install_web(app, config, engine, redis)
    own_routes = {route.resource.canonical for route in app.router.routes()
                  if route.method == hdrs.METH_POST and route.resource is not None}
    app[SHORTCUT] = WebhookShortcut(app[INTAKE], secure, own_routes)
    return app


async def webhook(request: web.Request) -> web.Response:
    return await receive(request, request.app[INTAKE], request.match_info["platform"])


async def receive(request: web.Request, intake: Intake, platform: str) -> web.Response:
    """A delivery for `platform`: read the body, hand it to the intake, answer in JSON."""
    body = await request.read()
    status, reply = await intake.receive(platform, body, request.headers, request[REQUEST_ID])
    return web.Response(body=orjson.dumps(reply), status=status, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    """The dependencies' health (`hub.status.health`), and which hub `process` (its id)
    answered: with `serve --processes N` there are N."""
    report = await asyncio.get_running_loop().run_in_executor(None, request.app[CHECK])
    report["process"] = os.getpid()
    return web.json_response(report, status=200 if report["database"] == "ok" else 503)


def problem(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Secure = Callable[[str, MutableMapping[str, str]], None]


def answering(secure: Secure) -> Middleware:
    """The hub's one middleware (`answer`). `POST /webhooks/{platform}` goes from here straight
    to `webhook`, past the middlewares that would let it through unchanged (the pages' sessions
    and CSRF, the API's rate limits): with a layer each, they were about 5 % of the event loop's
    CPU per webhook. (`serve` answers most webhooks before the application: `WebhookShortcut`.)
    """

    @web.middleware
    async def answers(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.handler is webhook:
            return await answer(request, secure, webhook)
        return await answer(request, secure, handler)

    return answers


async def answer(request: web.Request, secure: Secure,
                 handler: Callable[..., Awaitable[web.StreamResponse]], *args: Any
                 ) -> web.StreamResponse:
    """`handler(request, *args)`'s answer with its request id (`hub.request_id`) and security
    headers (`secure`: `hub.security_headers.adder`), and every error as JSON (or, for a
    browser asking for a page, an HTML page)."""
    rid = assign_request_id(request)
    try:
        response = await handler(request, *args)
    except Rejected as exc:
        response = problem(exc.status, exc.error, exc.description)
    except web.HTTPException as exc:
        if exc.status < 400:
            exc.headers[REQUEST_ID_HEADER] = rid
            secure(request.path, exc.headers)
            raise
        if wants_html(request):
            response = await error_page(request, exc.status, exc.reason)
        else:
            response = problem(exc.status, ERRORS.get(exc.status, "error"), exc.reason)
    except Exception:
        log.exception("request_failed", path=request.path)
        response = problem(500, "server_error", "internal error")
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = rid
        secure(request.path, response.headers)
    return response


class WebhookShortcut:
    """`POST /webhooks/<platform>` of the intake's platforms answered before aiohttp's
    application: the server's request handler (`runner.server.request_handler`, what aiohttp's
    `AppRunner` hands each request) becomes `around(that handler)`, which takes these requests
    itself and passes every other one on. The answer is the one the application gives (the same
    `answer` and `receive`); skipped are the router, the middleware chain and the response
    signals, about a tenth of the instructions per webhook. Left to the application: the paths
    in `own_routes`, those with a `POST` route of their own (Discord's, Stripe's:
    `hub.platform_routes`), any other method or path (the path as the router reads it,
    unescaped), and a request with `Expect` (its `100 Continue` is the application's)."""

    def __init__(self, intake: Intake, secure: Secure, own_routes: set[str]) -> None:
        self.intake = intake
        self.secure = secure
        self.paths = {path: name for name in intake.connectors
                      if (path := f"/webhooks/{name}") not in own_routes}

    def around(self, handle: Handler) -> Handler:
        paths, intake, secure = self.paths, self.intake, self.secure

        async def first(request: web.Request) -> web.StreamResponse:
            platform = paths.get(request.path) if request.method == "POST" else None
            if platform is None or hdrs.EXPECT in request.headers:
                return await handle(request)
            return await answer(request, secure, receive, intake, platform)

        return first


def answer_webhooks_first(runner: web.AppRunner) -> None:
    """Install the hub application's `WebhookShortcut` on `runner`'s server (after
    `runner.setup()`, before its site starts: each connection takes the handler when it opens).
    """
    server = runner.server
    if server is None:
        raise RuntimeError("answer_webhooks_first: call runner.setup() first")
    # An AppRunner's server makes `web.Request`s (its request factory), typed as their base.
    first = runner.app[SHORTCUT].around(cast(Handler, server.request_handler))
    server.request_handler = cast(Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
                                  first)


SHORTCUT = web.AppKey("webhook_shortcut", WebhookShortcut)
