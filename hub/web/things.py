"""The Flattr button and things pages: `/js/button.js` and its counter `/button/count`, a demo
page embedding the button (`/button/demo`), the auto-submit flow (`/submit/auto`: confirm, then
flattr, creating the thing on its first flattr), and browsing things (`/things`, `/things/top`,
`/things/{id}`).

The script and the counter are fetched by other sites' pages: they set and read no cookie
(they never touch the session), and the counter is public, cacheable JSON with an ETag and
`Access-Control-Allow-Origin: *`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from base import links
from base.inputs import parse_int
from catalog import things as catalog
from catalog.errors import CatalogError, InvalidThing
from catalog.urls import normalise
from catalog.vocab import CATEGORIES, LANGUAGES
from hub.inputs import path_int
from hub.web.session import CONFIG, call, current_member, render, require_member
from ledger.validation import is_web_url

SCRIPT = (Path(__file__).with_name("static") / "button.js").read_bytes()
SCRIPT_ETAG = '"' + hashlib.sha256(SCRIPT).hexdigest()[:20] + '"'
PAGE_SIZE = 20
SUBMIT_FIELDS = ("user_id", "url", "title", "description", "language", "tags", "category",
                 "hidden")
SORT_NAMES = (("trend", "Trending"), ("flattrs_month", "Most flattrs this month"),
              ("flattrs_all", "Most flattrs of all time"))
NAMES = {"category_names": dict(CATEGORIES), "language_names": dict(LANGUAGES)}
# The answer of a flattr, for people: (HTTP status, message).
RESULTS = {
    "flattred": (200, "Flattred! It counts in this month's flattrs."),
    "pledged": (200, "Pledged: the owner hasn't claimed this on Flattr Hub yet. Your flattr "
                     "waits for them and counts once they do."),
    "flattr_once": (409, "You already flattred this thing this month."),
    "flattr_owner": (403, "That's your own thing: you can't flattr it."),
    "unknown_user": (404, "There is no Flattr Hub user of that name, so nothing can be "
                          "flattred for this page."),
    "not_found": (404, "There is no such thing."),
    "not_flattrable": (409, "This thing lives on another platform: flattr it there."),
}


def routes(app: web.Application) -> None:
    app.router.add_get("/js/button.js", button_script)
    app.router.add_get("/button/count", button_count)
    app.router.add_get("/button/demo", button_demo)
    app.router.add_get("/submit/auto", submit_form)
    app.router.add_post("/submit/auto", submit)
    app.router.add_get("/things", browse)
    app.router.add_get("/things/top", top)
    app.router.add_get(r"/things/{id:\d{1,18}}", thing_page)
    app.router.add_post(r"/things/{id:\d{1,18}}/flattr", flattr_thing)


# --- the button ---------------------------------------------------------------------------

def _cacheable(request: web.Request, body: bytes, content_type: str, etag: str,
               max_age: int) -> web.Response:
    headers = {"Cache-Control": f"public, max-age={max_age}", "ETag": etag,
               "Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={**headers, "Content-Type": content_type})


async def button_script(request: web.Request) -> web.Response:
    return _cacheable(request, SCRIPT, "text/javascript; charset=utf-8", SCRIPT_ETAG, 3600)


async def button_count(request: web.Request) -> web.Response:
    max_age = request.app[CONFIG].catalog.counter_max_age
    try:
        url = normalise(request.query.get("url", ""))
    except InvalidThing as exc:
        return web.json_response({"error": "invalid_parameters", "error_description": str(exc)},
                                 status=400, headers={"Access-Control-Allow-Origin": "*"})
    found = await call(request, catalog.url_counts, url)
    body = json.dumps({"url": url, "thing_id": found["thing_id"], "flattrs": found["all"],
                       "flattrs_month": found["month"]}, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return _cacheable(request, body, "application/json; charset=utf-8", etag, max_age)


async def button_demo(request: web.Request) -> web.Response:
    """A stand-alone page, as another site would be, that embeds the button for `?uid=` and
    `?url=` (default: this page)."""
    url = request.query.get("url", "")
    if not is_web_url(url):
        url = links.base_url(request.app[CONFIG]) + request.path
    context = {"uid": request.query.get("uid", ""),
               "url": url,
               "title": request.query.get("title", "A page with a Flattr button"),
               "category": request.query.get("category", "text")}
    return aiohttp_jinja2.render_template("button_demo.html", request, context)


# --- auto-submit --------------------------------------------------------------------------

def _submit_query(source: Mapping[str, Any]) -> dict[str, str]:
    query = {name: str(source[name]) for name in SUBMIT_FIELDS if source.get(name)}
    if "user_id" not in query and source.get("uid"):
        query["user_id"] = str(source["uid"])
    return query


async def submit_form(request: web.Request) -> web.StreamResponse:
    query = _submit_query(request.query)
    try:
        params = catalog.submit_params(query)
    except InvalidThing as exc:
        return await render(request, "submit.html", {"error": str(exc), "params": None}, 400)
    me = await require_member(request)
    preview = await call(request, catalog.submit_preview, me.id, params)
    context = {"params": params, "query": query, **preview}
    if preview["refusal"]:
        status, message = RESULTS[preview["refusal"]]
        return await render(request, "submit.html", {**context, "error": message}, status)
    return await render(request, "submit.html", context)


async def submit(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    query = _submit_query(await request.post())
    try:
        params = catalog.submit_params(query)
        outcome, thing_id = await call(request, catalog.flattr_submit, me.id, params)
    except CatalogError as exc:
        return await render(request, "submit.html", {"error": str(exc), "params": None}, 400)
    status, message = RESULTS[outcome]
    context: dict[str, Any] = {"params": params, "query": query, "outcome": outcome,
                               "thing_id": thing_id, "done": True}
    context["error" if status >= 400 else "notice"] = message
    return await render(request, "submit.html", context, status)


# --- things -------------------------------------------------------------------------------

def _page_number(text: str | None) -> int:
    try:
        return parse_int(text, 1, 99_999)
    except ValueError:
        return 1


async def browse(request: web.Request) -> web.StreamResponse:
    q = request.query
    form = {"q": q.get("q", ""), "category": q.get("category", ""),
            "language": q.get("language", ""), "tag": q.get("tag", ""),
            "sort": q.get("sort", "trend")}
    page = _page_number(q.get("page"))
    context: dict[str, Any] = {"form": form, "categories": CATEGORIES, "languages": LANGUAGES,
                               "sorts": SORT_NAMES, "page": page, **NAMES}
    try:
        found = await call(request, catalog.search, form["q"] or None, form["category"] or None,
                           form["language"] or None, form["tag"] or None, form["sort"], page,
                           PAGE_SIZE)
    except InvalidThing as exc:
        return await render(request, "things.html", {**context, "error": str(exc),
                                                     "found": None}, 400)
    pages = max(1, -(-found["total_items"] // PAGE_SIZE))
    link = {k: v for k, v in form.items() if v}
    context.update(found=found, pages=pages,
                   previous=f"/things?{urlencode({**link, 'page': page - 1})}"
                   if page > 1 else None,
                   next=f"/things?{urlencode({**link, 'page': page + 1})}"
                   if page < pages else None)
    return await render(request, "things.html", context)


async def top(request: web.Request) -> web.StreamResponse:
    lists = await call(request, catalog.top_lists, 10)
    return await render(request, "things_top.html", {"lists": lists, **NAMES})


async def thing_page(request: web.Request) -> web.StreamResponse:
    me = await current_member(request)
    thing = await call(request, catalog.get_thing, path_int(request, "id"),
                       me.id if me else None)
    if thing is None:
        raise web.HTTPNotFound(reason="there is no such thing")
    return await render(request, "thing.html", {"thing": thing, **NAMES})


async def flattr_thing(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    thing_id = path_int(request, "id")
    outcome, thing = await call(request, catalog.flattr_and_show, me.id, thing_id)
    if thing is None:
        raise web.HTTPNotFound(reason="there is no such thing")
    status, message = RESULTS[outcome]
    return await render(request, "thing.html", {
        "thing": thing, **NAMES, ("error" if status >= 400 else "notice"): message}, status)
