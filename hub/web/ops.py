"""The operator pages under /ops: an index, the queues with their failed jobs and a replay
button, the settlement runs, and the ledger self-check. Operators only (others get 403, visitors
who are not logged in are sent to the login page)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from redis.exceptions import RedisError

from hub.web.session import CONFIG, REDIS, call, render, require_operator
from ledger.runs import recent_runs
from ledger.sql import utcnow
from ledger.verify import verify_snapshot
from workers import monitor

JOB_ID_CHARS = 200
# Pages of /ops built elsewhere, listed on the index with the ones here.
SECTIONS = (
    ("/ops/jobs", "Jobs", "queue depths, failed jobs and their errors, replay"),
    ("/ops/settlements", "Settlements", "month-end runs: state, amounts, duration"),
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
    app.router.add_get("/ops/verify", verify_form)
    app.router.add_post("/ops/verify", verify_run)


async def index(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    return await render(request, "ops_index.html", {"sections": SECTIONS})


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
            "error": "the queue (Redis) can not be reached; try again in a moment",
            "overview": monitor.Overview([], [])}, 503)
    return await render(request, "ops_jobs.html", {**context, "overview": overview}, status)


async def settlements_page(request: web.Request) -> web.StreamResponse:
    await require_operator(request)
    runs = await call(request, recent_runs)
    now = utcnow()
    return await render(request, "ops_settlements.html", {
        "runs": [(run, duration_text(run.duration(now))) for run in runs]})


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
