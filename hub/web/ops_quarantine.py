"""The operator page /ops/quarantine: inbox events the worker could not record
(`pipeline.quarantine`), with a Retry button (the event goes back into the inbox and the queue
is woken) and a Discard button (kept, never recorded). Operators only; both are POST with the
session's CSRF token."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from redis.exceptions import RedisError

from base.inputs import parse_int
from hub.web.session import REDIS, call, render, require_operator
from pipeline import quarantine
from pipeline.queues import wake

PAGE = "/ops/quarantine"
DONE = {"retried": "Event {id} is back in the inbox; the worker records it shortly.",
        "discarded": "Event {id} was discarded: it will not be recorded."}


def routes(app: web.Application) -> None:
    app.router.add_get(PAGE, quarantine_page)
    app.router.add_post(PAGE + "/retry", retry)
    app.router.add_post(PAGE + "/discard", discard)


async def quarantine_page(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    done = DONE.get(request.query.get("done", ""))
    notice = done.format(id=request.query.get("id", "")[:20]) if done else None
    return await _render(request, {"notice": notice})


async def _render(request: web.Request, context: dict[str, Any],
                  status: int = 200) -> web.Response:
    held = await call(request, quarantine.listing)
    return await render(request, "ops_quarantine.html", {**context, "held": held}, status)


async def retry(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    held_id = await _held_id(request)
    try:
        await call(request, quarantine.retry, held_id)
    except quarantine.NotQuarantined as exc:
        return await _render(request, {"error": str(exc)}, 404)
    with contextlib.suppress(RedisError):  # else the sweeper wakes it for rows left waiting
        await asyncio.to_thread(wake, request.app[REDIS], force=True)
    raise web.HTTPSeeOther(PAGE + "?" + urlencode({"done": "retried", "id": held_id}))


async def discard(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    held_id = await _held_id(request)
    try:
        await call(request, quarantine.discard, held_id)
    except quarantine.NotQuarantined as exc:
        return await _render(request, {"error": str(exc)}, 404)
    raise web.HTTPSeeOther(PAGE + "?" + urlencode({"done": "discarded", "id": held_id}))


async def _held_id(request: web.Request) -> int:
    try:
        return parse_int(str((await request.post()).get("id", "")), 1)
    except ValueError:
        raise web.HTTPBadRequest(reason="id must be the number of a quarantined event") from None
