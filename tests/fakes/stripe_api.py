"""A fake Stripe: the Checkout Sessions API as the `stripe` library calls it, a hosted
checkout page a browser can use, and signed webhook deliveries to the hub.

- `POST /v1/checkout/sessions` (form-encoded, `line_items[0][price_data][unit_amount]=…`,
  `Authorization: Bearer sk_…`, honouring `Idempotency-Key`) answers a `checkout.session`
  whose `url` is this fake's checkout page. Errors use Stripe's shape
  `{"error": {"type", "message", "param"}}`.
- `GET /pay/{id}` is that page: plain HTML with a *Pay* button (a form) and a *Cancel* link.
  Pressing Pay marks the session paid, sends a signed `checkout.session.completed` to
  `FakeStripe.webhook_url`, then redirects the browser to the session's `success_url`.
- `FakeStripe.deliver(event)` sends any event, signed as Stripe signs (`Stripe-Signature:
  t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`), computed here independently of the
  library, optionally with another secret or an old timestamp.

Use `create_app(FakeStripe(...))` with aiohttp's test server or `tests.fakes.server.serve`,
point `payments.stripe.api_base` at it, and set `webhook_url` once the hub's URL is known.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import html
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.platforms import fixture

SECRET_KEY = "sk_test_fake_51Flattr"
WEBHOOK_SECRET = "whsec_fake_stripe_test_secret"
STATE = web.AppKey("fake_stripe", object)


def signature_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """`Stripe-Signature` for `body`, as Stripe computes it."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{stamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


@dataclass
class FakeStripe:
    secret_key: str = SECRET_KEY
    webhook_secret: str = WEBHOOK_SECRET
    webhook_url: str = ""
    api_base: str = ""  # where the fake is served, once known
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)  # form params received
    deliveries: list[tuple[str, int]] = field(default_factory=list)  # (event type, status)
    idempotent: dict[str, dict[str, Any]] = field(default_factory=dict)

    def event(self, session_id: str, kind: str = "checkout.session.completed",
              **changes: Any) -> dict[str, Any]:
        """An event about one of this fake's sessions (or, if unknown, the fixture's session
        with that id), with `changes` applied to the session object."""
        base = fixture("stripe-checkout-session-completed.json")
        session = copy.deepcopy(self.sessions.get(session_id, base["data"]["object"]))
        session.update(id=session_id, **changes)
        base.update(id=f"evt_{secrets.token_hex(12)}", type=kind, created=int(time.time()),
                    data={"object": session})
        return base

    async def deliver(self, event: dict[str, Any], *, secret: str | None = None,
                      timestamp: int | None = None, body: bytes | None = None) -> int:
        """POST `event` to the hub, signed; the status it answered."""
        raw = body if body is not None else json.dumps(event).encode()
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Stripe-Signature": signature_header(raw, secret or self.webhook_secret,
                                                        timestamp)}
        async with aiohttp.ClientSession() as client, client.post(
                self.webhook_url, data=raw, headers=headers) as reply:
            await reply.read()
            self.deliveries.append((str(event.get("type")), reply.status))
            return reply.status


def create_app(state: FakeStripe) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app.router.add_post("/v1/checkout/sessions", create_session)
    app.router.add_get("/pay/{id}", checkout_page)
    app.router.add_post("/pay/{id}", pay)
    return app


def _state(request: web.Request) -> FakeStripe:
    state = request.app[STATE]
    assert isinstance(state, FakeStripe)
    return state


def _error(status: int, message: str, param: str | None = None) -> web.Response:
    return web.json_response({"error": {"type": "invalid_request_error", "message": message,
                                        "param": param}}, status=status)


async def create_session(request: web.Request) -> web.Response:
    state = _state(request)
    if request.headers.get("Authorization") != f"Bearer {state.secret_key}":
        return _error(401, "Invalid API Key provided")
    form = {key: str(value) for key, value in (await request.post()).items()}
    state.requests.append(form)
    key = request.headers.get("Idempotency-Key")
    if key and key in state.idempotent:
        return web.json_response(state.idempotent[key])
    for param in ("mode", "success_url", "line_items[0][price_data][currency]",
                  "line_items[0][price_data][unit_amount]"):
        if not form.get(param):
            return _error(400, f"Missing required param: {param}.", param)
    try:
        amount = int(form["line_items[0][price_data][unit_amount]"]) * int(
            form.get("line_items[0][quantity]", "1"))
    except ValueError:
        return _error(400, "Invalid integer", "line_items[0][price_data][unit_amount]")
    session_id = f"cs_test_{secrets.token_hex(16)}"
    metadata = {name[len("metadata["):-1]: value for name, value in form.items()
                if name.startswith("metadata[")}
    session = {
        "id": session_id, "object": "checkout.session", "amount_total": amount,
        "currency": form["line_items[0][price_data][currency]"], "customer": None,
        "client_reference_id": form.get("client_reference_id"), "metadata": metadata,
        "mode": form["mode"], "payment_intent": None, "payment_status": "unpaid",
        "status": "open", "success_url": form["success_url"],
        "cancel_url": form.get("cancel_url"), "livemode": False,
        "url": str(request.url.with_path(f"/pay/{session_id}").with_query(None)),
    }
    state.sessions[session_id] = session
    if key:
        state.idempotent[key] = session
    return web.json_response(session)


async def checkout_page(request: web.Request) -> web.Response:
    session = _state(request).sessions.get(request.match_info["id"])
    if session is None:
        raise web.HTTPNotFound(text="no such checkout session")
    amount = f"{session['amount_total'] // 100}.{session['amount_total'] % 100:02d}"
    cancel = html.escape(session.get("cancel_url") or "/", quote=True)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake Stripe Checkout</title></head>
<body><h1>Fake Stripe Checkout</h1>
<p>Pay <strong id="amount">{amount} {html.escape(session['currency'].upper())}</strong>
for Flattr Hub funds.</p>
<form method="post" action="/pay/{html.escape(session['id'], quote=True)}">
<button type="submit" id="pay">Pay</button></form>
<p><a href="{cancel}" id="cancel">Cancel</a></p></body></html>"""
    return web.Response(text=page, content_type="text/html")


async def pay(request: web.Request) -> web.Response:
    state = _state(request)
    session = state.sessions.get(request.match_info["id"])
    if session is None:
        raise web.HTTPNotFound(text="no such checkout session")
    session.update(payment_status="paid", status="complete",
                   payment_intent=f"pi_{secrets.token_hex(12)}")
    await state.deliver(state.event(session["id"]))
    raise web.HTTPSeeOther(session["success_url"])
