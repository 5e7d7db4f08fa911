"""Operator actions change state only on POST with the session's CSRF token, rq-dashboard's
included, whatever spelling of the path is used (`//`, `%2F`, dot segments, backslashes)."""

from __future__ import annotations

from rq.registry import FailedJobRegistry
from yarl import URL

from pipeline.queues import queue
from tests.test_ops import as_operator
from workers.worker import run_worker

pytest_plugins = ["tests.hub_fixtures"]

SPELLINGS = ("/ops/rq/requeue/events", "/ops/rq//requeue/events", "/ops/rq/%2Frequeue/events",
             "/ops/rq/%2frequeue/events", "/ops//rq/requeue/events", "//ops/rq/requeue/events",
             "/ops/rq/./requeue/events", "/ops/rq/x/../requeue/events",
             "/ops/rq/%2E/requeue/events", "/ops/rq/%5Crequeue/events",
             "/ops/rq/requeue-all", "/ops/rq//requeue-all")


def raw(client, path: str) -> URL:
    """The hub's URL with `path` sent exactly as written (no client-side normalising)."""
    return URL(str(client.make_url("/")).rstrip("/") + path, encoded=True)


def failed_job(worker_context, redis) -> FailedJobRegistry:
    queue("events", redis).enqueue("json.loads", "{not json")
    run_worker(worker_context, burst=True)
    failed = FailedJobRegistry("events", connection=redis)
    assert failed.count == 1
    return failed


async def test_no_spelling_of_a_dashboard_action_works_by_get_or_without_the_token(
        hub_client, engine, worker_context, redis):
    failed = failed_job(worker_context, redis)
    await as_operator(hub_client, engine)
    assert (await hub_client.get("/ops/rq/")).status == 200
    [job_id] = failed.get_job_ids()
    actions = (*SPELLINGS, f"/ops/rq/job/{job_id}/requeue", f"/ops/rq//job/{job_id}/delete",
               "/ops/rq/queue/events/failed/empty", "/ops/rq//queue/events/failed/empty")
    for path in actions:
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            reply = await hub_client.session.request(method, raw(hub_client, path),
                                             allow_redirects=False)
            assert reply.status in (403, 404, 405), (method, path, reply.status)
            assert failed.count == 1 and queue("events", redis).count == 0, (method, path)


async def test_the_dashboard_buttons_still_work_with_the_token(hub_client, engine,
                                                               worker_context, redis):
    failed = failed_job(worker_context, redis)
    await as_operator(hub_client, engine)
    page = await hub_client.get("/ops/rq/")
    assert page.status == 200
    token = hub_client.session.cookie_jar.filter_cookies(
        hub_client.make_url("/ops/rq/"))["_csrf_token"].value
    reply = await hub_client.post("/ops/rq/requeue/events", headers={"X-CSRFToken": token})
    assert reply.status == 200 and (await reply.json())["status"] == "OK"
    assert failed.count == 0 and queue("events", redis).count == 1


async def test_other_pages_refuse_disguised_paths_too(hub_client, engine):
    await as_operator(hub_client, engine)
    for path in ("//ops/jobs/replay", "/ops//jobs/replay", "/ops/jobs%2Freplay",
                 "/ops/./jobs/replay", "/ops/x/../jobs/replay", "//logout"):
        reply = await hub_client.session.post(raw(hub_client, path),
                                      data={"queue": "events", "job_id": "x"},
                                      allow_redirects=False)
        assert reply.status in (403, 404), (path, reply.status)
    assert (await hub_client.get("/ops")).status == 200


async def test_a_browser_gets_a_404_page_for_a_disguised_path(hub_client):
    for path in ("//dashboard", "/ops/rq//requeue/events", "/things/%2E%2E/ops"):
        reply = await hub_client.session.get(raw(hub_client, path),
                                             headers={"Accept": "text/html"})
        assert reply.status == 404 and "<h1>404</h1>" in await reply.text(), path
