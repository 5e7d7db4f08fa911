"""The operators' claim contests page: open requests to take over a claimed identity, awarded
to the claimant or rejected (`members.contests`), and the ones resolved before."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session

from hub.inputs import path_int
from hub.web.session import call, render, require_operator
from ledger.errors import LedgerError, NotFound
from members.contests import contests, resolve

FLASH = "flash"
RECENT = 50


def routes(app: web.Application) -> None:
    app.router.add_get("/ops/contests", contests_page)
    app.router.add_post("/ops/contests/{contest:[0-9]+}", decide)


async def contests_page(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    notice = (await get_session(request)).pop(FLASH, None)
    return await _page(request, notice=notice)


async def decide(request: web.Request) -> web.StreamResponse:
    me = await require_operator(request)
    form = await request.post()
    decision = str(form.get("decision", ""))
    contest = path_int(request, "contest")
    if decision not in ("award", "reject"):
        return await _page(request, error="Choose award or reject.", status=400)
    try:
        await call(request, resolve, contest, me.id, decision == "award")
    except NotFound as exc:
        return await _page(request, error=str(exc), status=404)
    except LedgerError as exc:
        return await _page(request, error=str(exc), status=409)
    (await get_session(request))[FLASH] = (f"Claim request #{contest} "
                                           f"{'awarded' if decision == 'award' else 'rejected'}.")
    raise web.HTTPSeeOther("/ops/contests")


async def _page(request: web.Request, status: int = 200,
                **messages: str | None) -> web.StreamResponse:
    rows = await call(request, contests)
    return await render(request, "contests.html", {
        "open": [r for r in rows if r.state == "open"],
        "resolved": [r for r in rows if r.state != "open"][:RECENT], **messages}, status)
