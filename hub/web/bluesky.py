"""Linking a Bluesky account (`members.bluesky_link`): name the handle or DID (`POST /bluesky`),
put the code in the profile description, and have the hub check it (`POST /bluesky/verify`).
The pages exist while `connectors.bluesky.enabled` is on."""

from __future__ import annotations

from aiohttp import web

from hub.web.session import CONFIG, ENGINE, call, render, require_member
from ledger.errors import LedgerError, NotFound
from members.bluesky_link import NotProved, account_did, claims_of, request_claim, verify


def routes(app: web.Application) -> None:
    app.router.add_get("/bluesky", page)
    app.router.add_post("/bluesky", claim)
    app.router.add_post("/bluesky/verify", check)


def _enabled(request: web.Request) -> None:
    if not request.app[CONFIG].connectors["bluesky"].enabled:
        raise web.HTTPNotFound()


async def _page(request: web.Request, uid: int, status: int = 200,
                **context: object) -> web.Response:
    claims = await call(request, claims_of, uid)
    return await render(request, "bluesky.html",
                        {"claims": claims, "account": "", **context}, status=status)


async def page(request: web.Request) -> web.StreamResponse:
    _enabled(request)
    me = await require_member(request)
    return await _page(request, me.id)


async def claim(request: web.Request) -> web.StreamResponse:
    _enabled(request)
    me = await require_member(request)
    account = str((await request.post()).get("account", "")).strip()[:300]
    try:
        did, handle = await account_did(request.app[CONFIG], account)
        await call(request, request_claim, me.id, did, handle)
    except LedgerError as exc:
        return await _page(request, me.id, 400, account=account, error=str(exc))
    raise web.HTTPSeeOther("/bluesky")


async def check(request: web.Request) -> web.StreamResponse:
    _enabled(request)
    me = await require_member(request)
    did = str((await request.post()).get("did", "")).strip()[:300]
    try:
        proved = await verify(request.app[ENGINE], request.app[CONFIG], me.id, did)
    except NotFound as exc:
        return await _page(request, me.id, 404, error=str(exc))
    except NotProved as exc:
        return await _page(request, me.id, 400, error=str(exc))
    except LedgerError as exc:
        return await _page(request, me.id, 409, error=str(exc))
    notice = (f"{proved.handle or proved.did} is linked: your likes on Bluesky become "
              "flattrs, and likes of your posts pay you." if proved.mine else
              f"You proved {proved.handle or proved.did} is yours, but another member had "
              "claimed it: an operator of this hub will decide whose it is.")
    return await _page(request, me.id, notice=notice)
