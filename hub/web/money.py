"""The money page (`/money`): balances, the monthly budget, adding funds through Stripe
Checkout, moving revenue to funds, payout details and payout requests; and the operator's
payouts page (`/ops/payouts`): open payouts, SEPA batches, marking payouts paid or failed.

Amounts in forms are written in the currency's units (`12.50`) and become minor units here.
Forms that move money carry a one-time `nonce`, the idempotency key of what they do, so a form
sent twice moves money once. Every success redirects (303) to the page with a fixed notice.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiohttp import web

from base import links
from connectors.stripe import CheckoutUnavailable, checkout_enabled, create_checkout, settings_of
from hub.inputs import path_int, safe_reason
from hub.web.amounts import units
from hub.web.session import CONFIG, call, render, require_member, require_operator
from ledger.accounts import set_budget
from ledger.errors import LedgerError, NotFound
from ledger.payouts import (
    NONCE,
    batch_file,
    export_batch,
    mark_failed,
    mark_paid,
    move_revenue_to_funds,
    operations,
    overview,
    request_payout,
    set_payout_details,
)

AMOUNT = re.compile(r"^(\d{1,9})(?:[.,](\d{1,2}))?$")
NOTICES = {
    "budget": "Your monthly budget is saved.",
    "moved": "Revenue moved to your funds.",
    "details": "Your payout details are saved.",
    "payout": "Payout requested. It leaves with the next bank transfer batch.",
    "success": "Thank you! Your funds show the payment as soon as Stripe confirms it.",
    "cancelled": "Payment cancelled; nothing was charged.",
}
OPS_NOTICES = {"paid": "Payout marked paid.", "failed": "Payout marked failed; the amount is "
               "back in the member's revenue.", "exported": "Batch exported."}


def routes(app: web.Application) -> None:
    app.router.add_get("/money", money_page)
    app.router.add_post("/money/budget", budget)
    app.router.add_post("/money/funds", add_funds)
    app.router.add_post("/money/revenue-to-funds", revenue_to_funds)
    app.router.add_post("/money/payout-details", payout_details)
    app.router.add_post("/money/payouts", payout)
    app.router.add_get("/ops/payouts", ops_page)
    app.router.add_post("/ops/payouts/export", ops_export)
    app.router.add_get(r"/ops/payouts/batches/{batch:\d{1,18}}.xml", ops_batch)
    app.router.add_post(r"/ops/payouts/{payout:\d{1,18}}/{outcome:paid|failed}", ops_settle)


def parse_amount(text: str) -> int:
    """`12`, `12.5`, `12.50` or `12,50` as minor units; ValueError otherwise."""
    match = AMOUNT.match((text or "").strip())
    if not match:
        raise ValueError("amount must be a number like 12.50")
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


async def money_page(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    notice = NOTICES.get(request.query.get("done", "") or request.query.get("checkout", ""))
    return await _page(request, me.id, {"notice": notice})


async def budget(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    config = request.app[CONFIG]
    try:
        await call(request, set_budget, me.id, parse_amount(str(form.get("amount", ""))),
                   config.money)
    except (ValueError, LedgerError) as exc:
        return await _page(request, me.id, {"error": _budget_error(exc, config)}, 400)
    raise web.HTTPSeeOther("/money?done=budget")


async def add_funds(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    config = request.app[CONFIG]
    if not checkout_enabled(config):
        return await _page(request, me.id, {"error": "Adding funds is not set up on this hub."},
                           409)
    nonce = str(form.get("nonce", ""))
    low, high = config.min_monthly, config.payments.max_funding
    try:
        amount = parse_amount(str(form.get("amount", "")))
    except ValueError as exc:
        return await _page(request, me.id, {"error": str(exc)}, 400)
    if not low <= amount <= high or not NONCE.match(nonce):
        error = (f"You can add between {units(low)} and {units(high)} at a time."
                 if NONCE.match(nonce) else "The form has expired; try again.")
        return await _page(request, me.id, {"error": error}, 400)
    base = links.base_url(request.app[CONFIG])
    create = partial(create_checkout, settings_of(config), amount=amount,
                     currency=config.currency, user=me.name,
                     success_url=f"{base}/money?checkout=success",
                     cancel_url=f"{base}/money?checkout=cancelled",
                     idempotency_key=f"checkout:{me.id}:{nonce}")
    try:
        url = await asyncio.get_running_loop().run_in_executor(None, create)
    except CheckoutUnavailable as exc:
        return await _page(request, me.id, {"error": str(exc)}, 502)
    raise web.HTTPSeeOther(url)


async def revenue_to_funds(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    try:
        await call(request, move_revenue_to_funds, me.id,
                   parse_amount(str(form.get("amount", ""))), str(form.get("nonce", "")))
    except (ValueError, LedgerError) as exc:
        return await _page(request, me.id, {"error": str(exc)}, 400)
    raise web.HTTPSeeOther("/money?done=moved")


async def payout_details(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    entered = {key: str(form.get(key, "")) for key in ("holder_name", "iban", "bic")}
    try:
        await call(request, set_payout_details, me.id, entered["holder_name"], entered["iban"],
                   entered["bic"])
    except LedgerError as exc:
        return await _page(request, me.id, {"error": str(exc), "entered": entered}, 400)
    raise web.HTTPSeeOther("/money?done=details")


async def payout(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    try:
        await call(request, request_payout, me.id, parse_amount(str(form.get("amount", ""))),
                   str(form.get("nonce", "")), request.app[CONFIG].money)
    except (ValueError, LedgerError) as exc:
        return await _page(request, me.id, {"error": str(exc)}, 400)
    raise web.HTTPSeeOther("/money?done=payout")


async def ops_page(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    return await _ops_page(request, {"notice": OPS_NOTICES.get(request.query.get("done", ""))})


async def ops_export(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    today = datetime.now(UTC).date()
    try:
        config = request.app[CONFIG]
        batch = await call(request, export_batch, config.money, config.debtor, today)
    except LedgerError as exc:
        return await _ops_page(request, {"error": str(exc)}, 409)
    raise web.HTTPSeeOther(f"/ops/payouts/batches/{batch.id}.xml")


async def ops_batch(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    batch_id = path_int(request, "batch")
    try:
        xml = await call(request, batch_file, batch_id)
    except NotFound as exc:
        raise web.HTTPNotFound(reason=safe_reason(exc)) from None
    return web.Response(body=xml, content_type="application/xml", headers={
        "Content-Disposition": f'attachment; filename="payouts-{batch_id}.xml"'})


async def ops_settle(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    outcome = request.match_info["outcome"]
    mark = mark_paid if outcome == "paid" else mark_failed
    try:
        await call(request, mark, path_int(request, "payout"))
    except NotFound as exc:
        raise web.HTTPNotFound(reason=safe_reason(exc)) from None
    except LedgerError as exc:
        return await _ops_page(request, {"error": str(exc)}, 409)
    raise web.HTTPSeeOther(f"/ops/payouts?done={outcome}")


async def _page(request: web.Request, uid: int, extra: dict[str, Any],
                status: int = 200) -> web.StreamResponse:
    config = request.app[CONFIG]
    return await render(request, "money.html", {
        "money": await call(request, overview, uid),
        "limits": {"min_monthly": config.min_monthly, "max_monthly": config.max_monthly,
                   "max_funding": config.payments.max_funding,
                   "payout_minimum": config.payout_minimum},
        "checkout": checkout_enabled(config),
        "nonces": {form: secrets.token_urlsafe(16) for form in ("funds", "move", "payout")},
        "entered": None,
        **extra}, status)


async def _ops_page(request: web.Request, extra: dict[str, Any],
                    status: int = 200) -> web.StreamResponse:
    return await render(request, "ops_payouts.html",
                        {"ops": await call(request, operations), **extra}, status)


def _budget_error(exc: Exception, config: Any) -> str:
    if isinstance(exc, LedgerError):
        return (f"Your monthly budget must be between {units(config.min_monthly)} and "
                f"{units(config.max_monthly)}.")
    return str(exc)
