"""The aiohttp application: `POST /webhooks/{platform}`, `GET /healthz`, `GET /readyz`,
`GET /metrics`, and the web pages for people (`hub.web`).

Handlers only translate HTTP: reading the body (bounded by `hub.max_body_bytes`, else 413),
calling `Intake.receive`, and writing JSON. Every error answer is JSON
`{"error": ..., "error_description": ...}`, unknown paths and methods included (a browser asking
for a page gets the same as an HTML page); client mistakes never get a 5xx. Platform-specific
routes (X's CRC check, Discord interactions) come from
`hub.platform_routes`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

import orjson
import structlog
from aiohttp import web
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
    app = web.Application(client_max_size=hub.max_body_bytes,
                          middlewares=[answering(security_headers.adder(config))])
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
    return app


async def webhook(request: web.Request) -> web.Response:
    body = await request.read()
    status, reply = await request.app[INTAKE].receive(
        request.match_info["platform"], body, request.headers, request[REQUEST_ID])
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


def answering(secure: Callable[[str, MutableMapping[str, str]], None]) -> Middleware:
    """The hub's one middleware: every answer's request id (`hub.request_id`), its security
    headers (`secure`: `hub.security_headers.adder`), and JSON errors.

    `POST /webhooks/{platform}` goes from here straight to `webhook`, past the middlewares
    that would let it through unchanged (the pages' sessions and CSRF, the API's rate limits):
    with a layer each, they were about 5 % of the event loop's CPU per webhook."""

    @web.middleware
    async def answers(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = assign_request_id(request)
        try:
            if request.match_info.handler is webhook:
                response: web.StreamResponse = await webhook(request)
            else:
                response = await handler(request)
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

    return answers
