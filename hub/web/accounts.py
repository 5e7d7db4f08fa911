"""Linked platform accounts: the /accounts page (the "my likes become flattrs" switch, unlink,
link buttons), starting OAuth to link an account or to log in with one, and the OAuth callback.

The callback only goes on when the `state` it brings was started in this browser (its hash is
kept in the encrypted session cookie, next to the pending authorisation in the database), so a
callback URL made in someone else's browser signs nobody in and links nothing.
"""

from __future__ import annotations

from functools import partial

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from base import links
from hub.inputs import path_int
from hub.web.errors import error_page
from hub.web.session import (
    CONFIG,
    call,
    current_member,
    local_path,
    render,
    require_member,
    sign_in,
)
from ledger.errors import LedgerError, NotFound
from ledger.identities import set_flattr_enabled
from members.linking import complete, overview, start, unlink
from members.logins import Member
from members.oauth import PROVIDERS, OAuthError, enabled, state_hash

STATES = "oauth_states"  # session key: hashes of the states this browser started
KEEP_STATES = 4
FLASH = "flash"


def routes(app: web.Application) -> None:
    aiohttp_jinja2.get_env(app).globals["login_providers"] = enabled(app[CONFIG])
    app.router.add_get("/accounts", accounts_page)
    app.router.add_get("/accounts/link/{platform}", link_page)
    app.router.add_post("/accounts/link/{platform}", start_link)
    app.router.add_post("/accounts/{identity:[0-9]+}/flattr", switch_flattr)
    app.router.add_post("/accounts/{identity:[0-9]+}/unlink", unlink_account)
    app.router.add_get("/accounts/callback/{platform}", oauth_callback)
    app.router.add_post("/login/{platform}", start_login)


async def accounts_page(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    notice = (await get_session(request)).pop(FLASH, None)
    return await _page(request, me, notice=notice)


async def link_page(request: web.Request) -> web.StreamResponse:
    """Links from elsewhere (a claim page) land here: the button that starts linking is a form
    post, so another site cannot start it."""
    me = await require_member(request)
    return await _page(request, me, focus=request.match_info["platform"])


async def start_link(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    platform = request.match_info["platform"]
    try:
        url, state = await start(partial(call, request), request.app[CONFIG], platform, "link",
                                 me.id, _redirect_uri(request, platform),
                                 str(form.get("instance", "")))
    except OAuthError as exc:
        return await _page(request, me, error=str(exc), status=exc.status)
    await _remember(request, state)
    raise web.HTTPSeeOther(url)


async def start_login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    platform = request.match_info["platform"]
    try:
        url, state = await start(partial(call, request), request.app[CONFIG], platform, "login",
                                 None, _redirect_uri(request, platform),
                                 str(form.get("instance", "")))
    except OAuthError as exc:
        return await render(request, "login.html", {
            "error": str(exc), "name": "", "next": local_path(None)}, status=exc.status)
    await _remember(request, state)
    raise web.HTTPSeeOther(url)


async def oauth_callback(request: web.Request) -> web.StreamResponse:
    # OAuth 1.0a (Flickr) brings its request token as the state, and a verifier as the code
    platform = request.match_info["platform"]
    state = request.query.get("state") or request.query.get("oauth_token", "")
    session = await get_session(request)
    started = list(session.get(STATES, []))
    if not state or state_hash(state) not in started:
        return await error_page(request, 400, "This sign-in was not started in this browser, "
                                "or it was already used. Please start again.")
    session[STATES] = [h for h in started if h != state_hash(state)]
    me = await current_member(request)
    try:
        done = await complete(partial(call, request), request.app[CONFIG], platform, state,
                              request.query.get("code") or request.query.get("oauth_verifier", ""),
                              request.query.get("error", ""),
                              None if me is None else me.id)
    except OAuthError as exc:
        return await error_page(request, exc.status, str(exc))
    except LedgerError as exc:
        return await error_page(request, 409, str(exc))
    if done.purpose == "login":
        await sign_in(request, done.user_id)
    label = PROVIDERS[platform].label
    if done.attached.contest_id is not None:
        message = (f"That {label} account is claimed by another member. We opened claim "
                   f"request #{done.attached.contest_id}: an operator will review it. Until "
                   "then the account is not linked to you.")
    elif done.purpose == "login":
        raise web.HTTPSeeOther("/dashboard")
    else:
        message = f"Your {label} account is linked: your likes there now become flattrs."
    (await get_session(request))[FLASH] = message
    raise web.HTTPSeeOther("/accounts")


async def switch_flattr(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    on = str(form.get("enabled", "")) == "1"
    try:
        await call(request, set_flattr_enabled, me.id, path_int(request, "identity"), on)
    except NotFound as exc:
        return await _page(request, me, error=str(exc), status=404)
    (await get_session(request))[FLASH] = ("Likes from that account become flattrs again."
                                           if on else "Likes from that account no longer "
                                           "become flattrs.")
    raise web.HTTPSeeOther("/accounts")


async def unlink_account(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    try:
        await call(request, unlink, me.id, path_int(request, "identity"))
    except NotFound as exc:
        return await _page(request, me, error=str(exc), status=404)
    (await get_session(request))[FLASH] = ("Unlinked. Its likes no longer become flattrs; what "
                                           "it owns still pays you.")
    raise web.HTTPSeeOther("/accounts")


async def _page(request: web.Request, me: Member, status: int = 200,
                **messages: str | None) -> web.StreamResponse:
    linked, claim_requests = await call(request, overview, me.id)
    return await render(request, "accounts.html", {
        "accounts": linked, "claim_requests": claim_requests,
        "providers": enabled(request.app[CONFIG]),
        "labels": {p.platform: p.label for p in PROVIDERS.values()}, **messages}, status)


async def _remember(request: web.Request, state: str) -> None:
    session = await get_session(request)
    session[STATES] = [*session.get(STATES, []), state_hash(state)][-KEEP_STATES:]


def _redirect_uri(request: web.Request, platform: str) -> str:
    return f"{links.base_url(request.app[CONFIG])}/accounts/callback/{platform}"
