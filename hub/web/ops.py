"""The operator pages under /ops: an index (with the stream connectors' liveness), the queues
with their failed jobs and a replay button, the settlement runs with a button that settles the
ended months now, and the ledger self-check. Operators only (others get 403, visitors who are
not logged in are sent to the login page)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from redis.exceptions import RedisError

from connectors.streams import stream_states
from hub.web.session import CONFIG, ENGINE, REDIS, call, render, require_operator
from ledger.sql import utcnow
from ledger.verify import verify_snapshot
from pipeline import monitor, settling

JOB_ID_CHARS = 200
UNREACHABLE = "the queue (Redis) can not be reached; try again in a moment"
# Pages of /ops built elsewhere, listed on the index with the ones here.
SECTIONS = (
    ("/ops/jobs", "Jobs", "queue depths, failed jobs and their errors, replay"),
    ("/ops/quarantine", "Quarantined events", "events the worker could not record: retry, "
     "discard"),
    ("/ops/settlements", "Settlements", "month-end runs, months due, settle now"),
    ("/ops/contests", "Claim contests", "identities claimed by more than one member"),
    ("/ops/payouts", "Payouts", "payouts waiting to be paid"),
    ("/ops/verify", "Ledger self-check", "run `ledger verify` on the live ledger"),
    ("/ops/rq/", "RQ dashboard", "every queue, job and worker (rq-dashboard)"),
)


def routes(app: web.Application) -> None:
    app.router.add_get("/ops", index)
    app.router.add_get("/ops/jobs", jobs_page)
    app.router.add_post("/ops/jobs/replay", replay)
    app.router.add_get("/ops/settlements", settlements_page)
    app.router.add_post("/ops/settlements/settle", settle_now)
    app.router.add_get("/ops/verify", verify_form)
    app.router.add_post("/ops/verify", verify_run)


async def index(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    states = await asyncio.to_thread(stream_states, request.app[REDIS], request.app[CONFIG])
    return await render(request, "ops_index.html", {"sections": SECTIONS, "streams": [
        (stream, state, _ago(state.last_event_at) if state else None)
        for stream, state in states]})


def _ago(moment: datetime | None) -> str | None:
    return duration_text(datetime.now(UTC) - moment) if moment else None


async def jobs_page(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    replayed = request.query.get("replayed")
    notice = f"Job {replayed} is queued again." if replayed else None
    return await _render_jobs(request, {"notice": notice})


async def replay(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    form = await request.post()
    queue_name = str(form.get("queue", ""))
    job_id = str(form.get("job_id", ""))[:JOB_ID_CHARS]
    try:
        await asyncio.to_thread(monitor.replay, request.app[REDIS], queue_name, job_id)
    except monitor.ReplayError as exc:
        return await _render_jobs(request, {"error": str(exc)}, exc.status)
    raise web.HTTPSeeOther("/ops/jobs?" + urlencode({"replayed": job_id}))


async def _render_jobs(request: web.Request, context: dict[str, Any],
                       status: int = 200) -> web.StreamResponse:
    try:
        overview = await asyncio.to_thread(monitor.overview, request.app[REDIS],
                                           request.app[CONFIG])
    except RedisError:
        return await render(request, "ops_jobs.html", {
            "error": UNREACHABLE,
            "overview": monitor.Overview([], [])}, 503)
    return await render(request, "ops_jobs.html", {**context, "overview": overview}, status)


SETTLE_NOTICES = {
    "queued": "A settlement job was queued: the worker settles the ended months shortly.",
    "waiting": "A settlement job was already waiting: it settles every ended month when it runs.",
}


async def settlements_page(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    notice = SETTLE_NOTICES.get(request.query.get("settle", ""))
    return await _render_settlements(request, {"notice": notice})


async def settle_now(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    try:
        queued = await asyncio.to_thread(settling.settle_now, request.app[REDIS])
    except RedisError:
        return await _render_settlements(request, {"error": UNREACHABLE}, 503)
    raise web.HTTPSeeOther("/ops/settlements?" + urlencode(
        {"settle": "queued" if queued else "waiting"}))


async def _render_settlements(request: web.Request, context: dict[str, Any],
                              status: int = 200) -> web.StreamResponse:
    now = utcnow()
    overview = await asyncio.to_thread(settling.overview, request.app[ENGINE],
                                       request.app[REDIS], request.app[CONFIG], now)
    if overview.jobs is None:
        context = {**context, "error": UNREACHABLE, "notice": None}
        status = 503
    return await render(request, "ops_settlements.html", {
        **context, "overview": overview, "schedule": request.app[CONFIG].settlement,
        "runs": [(run, duration_text(run.duration(now))) for run in overview.runs]}, status)


def duration_text(duration: timedelta) -> str:
    """`2 h 05 min`, `3 min 07 s`, `12 s`."""
    seconds = max(0, int(duration.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


async def verify_form(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    return await render(request, "ops_verify.html", {"problems": None})


async def verify_run(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    problems = await call(request, verify_snapshot)
    return await render(request, "ops_verify.html", {"problems": problems})
