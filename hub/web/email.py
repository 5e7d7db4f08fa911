"""E-mail addresses on the web: giving or changing one (`/settings/security/email`, the same
answer whether or not the address is known), the confirmation link
(`/settings/email/verify/{token}`: GET asks, POST confirms), and sending the message a claim
makes (`deliver`, after the transaction is committed)."""

from __future__ import annotations

import asyncio
from email.utils import make_msgid

import structlog
from aiohttp import web
from aiohttp_session import get_session

from hub.web.security import FLASH, PAGE
from hub.web.session import CONFIG, call, render, require_member
from ledger.errors import LedgerError
from members.emails import (
    VERIFY_PATH,
    EmailError,
    Mail,
    claim_email,
    confirm_email,
    email_to_confirm,
)
from notifications.channels import SendError, send_email

log = structlog.get_logger(__name__)


def routes(app: web.Application) -> None:
    app.router.add_post(PAGE + "/email", change_email)
    app.router.add_get(VERIFY_PATH + "/{token}", verify_page)
    app.router.add_post(VERIFY_PATH + "/{token}", verify)


async def change_email(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    email = str(form.get("email", "")).strip()
    try:
        mail = await call(request, claim_email, request.app[CONFIG], me.id, email)
    except LedgerError as exc:
        (await get_session(request))[FLASH] = str(exc)
        raise web.HTTPSeeOther(PAGE) from None
    await deliver(request, mail)
    (await get_session(request))[FLASH] = (
        f"We sent a message to {email}: follow its link to confirm the address.")
    raise web.HTTPSeeOther(PAGE)


async def verify_page(request: web.Request) -> web.StreamResponse:
    try:
        email = await call(request, email_to_confirm, request.app[CONFIG],
                           request.match_info["token"])
    except EmailError as exc:
        return await render(request, "email_verify.html", {"error": str(exc)}, 404)
    return await render(request, "email_verify.html", {"email": email,
                                                       "token": request.match_info["token"]})


async def verify(request: web.Request) -> web.StreamResponse:
    try:
        email = await call(request, confirm_email, request.app[CONFIG],
                           request.match_info["token"])
    except EmailError as exc:
        return await render(request, "email_verify.html", {"error": str(exc)}, 409)
    return await render(request, "email_verify.html", {
        "notice": f"Thank you: {email} is confirmed."})


async def deliver(request: web.Request, mail: Mail | None) -> None:
    """Send the message of an address claim, if any; a failure is logged (the member can ask
    again), never shown: the answer must not depend on the address."""
    config = request.app[CONFIG]
    if mail is None:
        return
    if not config.notifications.smtp_host:
        log.warning("email_not_configured", kind="address_claim")
        return
    try:
        await asyncio.get_running_loop().run_in_executor(
            None, send_email, config, mail.to, mail.subject, mail.text,
            make_msgid(domain="flattr-hub"))
    except SendError as exc:
        log.warning("email_not_sent", kind="address_claim", reason=str(exc))
