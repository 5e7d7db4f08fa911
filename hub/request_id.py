"""Request ids: every request gets one, taken from a well-formed incoming `X-Request-ID` header
(a proxy's or the sender's) or made up, bound to structlog's context for every line logged while
it is handled, and returned in the `X-Request-ID` response header. Webhook events carry it into
the inbox and the worker logs it with the batch; jobs enqueued while it is bound carry it in
their meta (`pipeline.queues`)."""

from __future__ import annotations

import re
from random import getrandbits

import structlog
from aiohttp import web

HEADER = "X-Request-ID"
REQUEST_ID = web.RequestKey("request_id", str)
# Printable, no spaces or quotes, short: safe to log and to store.
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}")


def request_id_for(sent: str | None) -> str:
    """`sent` when it is a well-formed request id, else a new one (32 random hex digits). An id
    needs to be unique, not secret (a sender may choose its own), so it comes from `random`
    (reseeded in every process) rather than a system call per request."""
    if sent and WELL_FORMED.fullmatch(sent):
        return sent
    return f"{getrandbits(128):032x}"


def assign_request_id(request: web.Request) -> str:
    """Give `request` its id (`request[REQUEST_ID]`) and bind it for logging; the caller (the
    hub's outermost middleware, `hub.app.answers`) answers with it. aiohttp handles each
    request in a task of its own, so the binding ends with the request."""
    rid = request_id_for(request.headers.get(HEADER))
    request[REQUEST_ID] = rid
    structlog.contextvars.bind_contextvars(request_id=rid)
    return rid
