"""The member's dashboard (this month so far, the pledges waiting for what they create, earlier
months with a chart) and their monthly statements as pages and CSV downloads."""

from __future__ import annotations

from aiohttp import web

from base.config import Settings
from hub.web.charts import line_chart
from hub.web.session import CONFIG, call, render, require_member
from ledger.months import month_end, month_of, parse_month
from ledger.overview import overview
from ledger.sql import utcnow
from ledger.statement import statement
from ledger.statement_csv import statement_csv
from pipeline.settling import settlement_time

MONTH = r"{month:\d{4}-\d{2}}"


def routes(app: web.Application) -> None:
    app.router.add_get("/dashboard", dashboard)
    app.router.add_get(f"/statements/{MONTH}.csv", statement_download)
    app.router.add_get(f"/statements/{MONTH}", statement_page)


async def dashboard(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    config = request.app[CONFIG]
    view = await call(request, overview, me.id, config.money)
    chart = line_chart([m.month for m in view.history], [
        ("given", "Given", [m.given for m in view.history]),
        ("received", "Received", [m.received for m in view.history]),
    ]) if view.history else None
    return await render(request, "dashboard.html", {
        "view": view, "chart": chart, "settles_on": lambda month: settles_on(config, month),
        "min_monthly": config.min_monthly, "give_to_get": config.give_to_get})


async def statement_page(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    month = _month(request)
    report = await call(request, statement, me.id, month, request.app[CONFIG].money)
    return await render(request, "statement.html", {"report": report})


async def statement_download(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    month = _month(request)
    report = await call(request, statement, me.id, month, request.app[CONFIG].money)
    return web.Response(
        text=statement_csv(report), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="flattr-{me.name}-{month}.csv"'})


def _month(request: web.Request) -> str:
    """The month of the path; 404 when it is malformed or has not begun."""
    try:
        month = parse_month(request.match_info["month"])
    except ValueError:
        raise web.HTTPNotFound(reason="there is no such month") from None
    if month > month_of(utcnow()):
        raise web.HTTPNotFound(reason=f"{month} has not begun yet")
    return month


def settles_on(config: Settings, month: str) -> str:
    """When the settlement of `month` is scheduled, for people (`1 July 2026, 00:10 UTC`)."""
    day, (hour, minute) = settlement_time(config)
    moment = month_end(month).replace(day=day, hour=hour, minute=minute)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"
