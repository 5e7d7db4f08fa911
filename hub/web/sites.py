"""Claiming a web site: ask for a token (`POST /sites`), publish it on the site or in its DNS,
and have the hub check (`POST /sites/<host>/verify`)."""

from __future__ import annotations

from aiohttp import web

from hub.inputs import safe_reason
from hub.web.session import CONFIG, ENGINE, call, render, require_member
from ledger.errors import LedgerError, NotFound
from members.site_proof import META_NAME, TXT_PREFIX, WELL_KNOWN
from members.sites import (
    ProofMissing,
    SiteClaim,
    request_claim,
    site_claim,
    site_claims_of,
    verify_site,
)

HOST = r"{host:[a-z0-9.-]{1,253}}"


def routes(app: web.Application) -> None:
    app.router.add_get("/sites", sites_page)
    app.router.add_post("/sites", claim_site)
    app.router.add_get(f"/sites/{HOST}", site_page)
    app.router.add_post(f"/sites/{HOST}/verify", verify)


async def sites_page(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    claims = await call(request, site_claims_of, me.id)
    return await render(request, "sites.html", {"claims": claims, "host": ""})


async def claim_site(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    host = str((await request.post()).get("host", "")).strip()
    try:
        claim = await call(request, request_claim, me.id, host)
    except LedgerError as exc:
        claims = await call(request, site_claims_of, me.id)
        return await render(request, "sites.html",
                            {"claims": claims, "host": host, "error": str(exc)}, status=400)
    raise web.HTTPSeeOther(f"/sites/{claim.host}")


async def site_page(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    try:
        claim = await call(request, site_claim, me.id, request.match_info["host"])
    except NotFound as exc:
        raise web.HTTPNotFound(reason=safe_reason(exc)) from None
    return await render(request, "site.html", _context(claim))


async def verify(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    host = request.match_info["host"]
    try:
        claim = await verify_site(request.app[ENGINE], request.app[CONFIG], me.id, host)
    except NotFound as exc:
        raise web.HTTPNotFound(reason=safe_reason(exc)) from None
    except ProofMissing as exc:
        return await render(request, "site.html", {
            **_context(exc.claim), "error": str(exc), "reasons": exc.reasons}, status=400)
    except LedgerError as exc:
        claim = await call(request, site_claim, me.id, host)
        return await render(request, "site.html", {**_context(claim), "error": str(exc)},
                            status=409)
    notice = (f"{claim.host} is yours: flattrs of it now pay you." if claim.mine else
              f"You proved that you run {claim.host}, but {claim.holder} had claimed it: an "
              "operator of this hub will decide whose it is.")
    return await render(request, "site.html", {**_context(claim), "notice": notice})


def _context(claim: SiteClaim) -> dict[str, object]:
    return {"claim": claim, "meta_name": META_NAME, "well_known": WELL_KNOWN,
            "txt_prefix": TXT_PREFIX, "reasons": []}
