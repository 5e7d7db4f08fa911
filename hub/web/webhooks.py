"""Outbound webhooks for members (`/settings/webhooks`): register an endpoint and pick its
events (its `whsec_` secret is shown once, in the answer to that form, and never again),
enable, disable or delete it, read its delivery log and resend a delivery. A member finds only
their own endpoints and deliveries: any other id answers 404. Partner endpoints
(`pledge.created` for identities nobody has claimed) see every owner-less flattr on the hub,
so only operators make them, with `flattr-hub webhooks add --partner`. Everything goes through
the functions of `outbound` that the CLI uses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from hub.inputs import path_int, safe_reason
from hub.web.session import CONFIG, ENGINE, REDIS, call, render, require_member
from members.logins import Member
from outbound import delivery, endpoints

PAGE = "/settings/webhooks"
DONE = {"enabled": "Enabled.", "disabled": "Disabled: nothing is sent to it until you enable "
        "it again.", "resent": "The delivery will be sent again."}


def routes(app: web.Application) -> None:
    app.router.add_get(PAGE, endpoints_page)
    app.router.add_post(PAGE, add_endpoint)
    app.router.add_get(PAGE + r"/{endpoint:\d+}", log_page)
    app.router.add_post(PAGE + r"/{endpoint:\d+}/enable", enable_endpoint)
    app.router.add_post(PAGE + r"/{endpoint:\d+}/disable", disable_endpoint)
    app.router.add_post(PAGE + r"/{endpoint:\d+}/delete", delete_endpoint)
    app.router.add_post(PAGE + r"/{endpoint:\d+}/deliveries/{delivery:\d+}/resend", resend)


async def endpoints_page(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    notice = "Endpoint deleted." if request.query.get("deleted") else None
    return await _endpoints(request, me, {"notice": notice})


async def _endpoints(request: web.Request, me: Member, context: dict[str, Any],
                     status: int = 200) -> web.Response:
    found = await call(request, endpoints.list_endpoints, me.id)
    return await render(request, "webhooks.html", {
        "endpoints": found, "event_types": endpoints.USER_EVENT_TYPES, **context}, status)


async def add_endpoint(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    url = str(form.get("url", "")).strip()
    kinds = [str(kind) for kind in form.getall("events", [])]
    try:
        endpoint_id, secret = await call(request, endpoints.add_endpoint, request.app[CONFIG],
                                         me.id, url, kinds)
    except endpoints.OutboundError as exc:
        return await _endpoints(request, me, {"error": str(exc), "url": url, "chosen": kinds},
                                400)
    page = await _endpoints(request, me, {"created": endpoint_id, "secret": secret})
    page.headers["Cache-Control"] = "no-store"  # the secret must not stay in a cache
    return page


async def log_page(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    return await _log(request, me, {"notice": DONE.get(request.query.get("done", ""))})


async def _log(request: web.Request, me: Member, context: dict[str, Any],
               status: int = 200) -> web.Response:
    try:
        endpoint, deliveries = await call(request, endpoints.endpoint_log,
                                          path_int(request, "endpoint"), me.id)
    except endpoints.NotFound as exc:
        raise web.HTTPNotFound(reason=safe_reason(exc)) from None
    return await render(request, "webhook_log.html",
                        {"endpoint": endpoint, "deliveries": deliveries, **context}, status)


async def enable_endpoint(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    endpoint_id = await _change(request, endpoints.enable_endpoint, me)
    raise web.HTTPSeeOther(f"{PAGE}/{endpoint_id}?done=enabled")


async def disable_endpoint(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    endpoint_id = await _change(request, endpoints.disable_endpoint, me, "disabled by its owner")
    raise web.HTTPSeeOther(f"{PAGE}/{endpoint_id}?done=disabled")


async def delete_endpoint(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    await _change(request, endpoints.delete_endpoint, me)
    raise web.HTTPSeeOther(f"{PAGE}?deleted=1")


async def _change(request: web.Request, change: Callable[..., None], me: Member,
                  *args: Any) -> int:
    """Run `change(conn, endpoint id, *args, owner=me)`; the endpoint id, or 404."""
    endpoint_id = path_int(request, "endpoint")
    try:
        await call(request, change, endpoint_id, *args, owner=me.id)
    except endpoints.NotFound as exc:
        raise web.HTTPNotFound(reason=safe_reason(exc)) from None
    return endpoint_id


async def resend(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    endpoint_id = path_int(request, "endpoint")
    try:
        # resend commits before it queues, so it takes the engine rather than a connection
        await asyncio.to_thread(delivery.resend, request.app[ENGINE],
                                path_int(request, "delivery"), request.app[REDIS],
                                owner=me.id, endpoint_id=endpoint_id)
    except endpoints.NotFound as exc:
        raise web.HTTPNotFound(reason=safe_reason(exc)) from None
    except endpoints.OutboundError as exc:
        return await _log(request, me, {"error": str(exc)}, 409)
    raise web.HTTPSeeOther(f"{PAGE}/{endpoint_id}?done=resent")
