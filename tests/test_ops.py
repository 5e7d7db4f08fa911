"""The operator pages under /ops and the RQ dashboard at /ops/rq/: only operators get in; a job
that failed for real is shown with a short error and replayed from the page; settlement runs;
the ledger self-check button; and the `user password` / `user operator` commands that make the
first operator."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from base.config import with_overrides
from connectors.stream_status import StatusWriter
from flattr_hub.cli import main
from hub.app import create_app
from ledger import accounts
from ledger.months import add_months, month_of
from ledger.schema import accounts as accounts_table
from ledger.schema import flattrs
from ledger.settlement import settle
from ledger.sql import utcnow
from members.logins import set_operator
from pipeline import inbox
from pipeline.inbox import Entry
from pipeline.monitor import short_error
from pipeline.queues import queue
from pipeline.settling import SETTLE_LOCK
from tests.hub_helpers import seed_github_users
from tests.ledger_helpers import feed, make_user, star
from tests.web_helpers import PASSWORD, csrf_token, log_in, post_form, sign_up
from workers import jobs
from workers.worker import run_worker

pytest_plugins = ["tests.hub_fixtures"]

PAGES = ("/ops", "/ops/jobs", "/ops/settlements", "/ops/verify", "/ops/rq/",
         "/ops/rq/0/data/queues.json")


async def as_operator(client, engine, name: str = "olga") -> None:
    await sign_up(client, name)
    with engine.begin() as conn:
        set_operator(conn, accounts.user_id(conn, name), True)


def table_rows(page: str, table_id: str) -> list[list[str]]:
    """The text of each cell of each row of the table with `table_id` (header row included)."""
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S)
    assert table, f"no table {table_id}"
    return [[re.sub(r"<[^>]+>", "", cell).strip()
             for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)]


def flattr_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(flattrs)).scalar_one()


async def test_visitors_are_sent_to_log_in_and_members_refused(hub_client, engine):
    for path in PAGES:
        reply = await hub_client.get(path, allow_redirects=False)
        assert reply.status == 303, path
        assert reply.headers["Location"].startswith("/login?next="), path
        assert unquote(reply.headers["Location"]).endswith("next=" + path), path
    await sign_up(hub_client, "max")
    for path in PAGES:
        reply = await hub_client.get(path, allow_redirects=False)
        assert reply.status == 403, path
    token = await csrf_token(hub_client)
    for path in ("/ops/jobs/replay", "/ops/verify", "/ops/settlements/settle",
                 "/ops/rq/job/x/requeue"):
        reply = await hub_client.post(path, data={"csrf_token": token, "queue": "events",
                                                  "job_id": "x"}, allow_redirects=False)
        assert reply.status == 403, path


async def test_the_index_links_every_operator_page(hub_client, engine):
    await as_operator(hub_client, engine)
    page = await (await hub_client.get("/ops")).text()
    for path in ("/ops/jobs", "/ops/settlements", "/ops/verify", "/ops/rq/", "/ops/contests",
                 "/ops/payouts"):
        assert f'href="{path}"' in page


async def test_a_failed_job_is_shown_and_replayed_from_ops(hub_client, engine, hub_config,
                                                           worker_context, redis, monkeypatch):
    seed_github_users(engine, hub_config)
    good = star("1", "repo-1", "2", "2026-10-03T12:00:00+00:00", event_id="ok-1")
    inbox.store(engine, [Entry(good, "ok-1")])

    def database_gone(conn, events):  # not the event's fault: the job fails, nothing is held
        raise OperationalError("INSERT", {}, Exception("database went away mid-batch"))

    monkeypatch.setattr(jobs, "ingest", database_gone)
    job = queue("events", redis).enqueue("workers.jobs.drain", description="drain the inbox")
    run_worker(worker_context, burst=True)
    assert FailedJobRegistry("events", connection=redis).get_job_ids() == [job.id]
    assert flattr_count(engine) == 0

    await as_operator(hub_client, engine)
    page = await (await hub_client.get("/ops/jobs")).text()
    assert job.id in page and "OperationalError" in page and "Traceback" not in page
    assert ["events", "0", "0", "0", "1"] in table_rows(page, "queues")

    monkeypatch.undo()  # the database is back
    reply = await post_form(hub_client, "/ops/jobs/replay", {"queue": "events", "job_id": job.id},
                            token_from="/ops/jobs")
    assert reply.status == 303
    assert reply.headers["Location"] == f"/ops/jobs?replayed={job.id}"
    assert queue("events", redis).fetch_job(job.id).meta["request_id"] == \
        reply.headers["X-Request-ID"]
    run_worker(worker_context, burst=True)
    assert flattr_count(engine) == 1
    assert FailedJobRegistry("events", connection=redis).count == 0
    page = await (await hub_client.get(reply.headers["Location"])).text()
    assert f"Job {job.id} is queued again." in page and "No failed jobs." in page


async def test_replaying_what_is_not_a_failed_job_says_why(hub_client, engine, redis):
    await as_operator(hub_client, engine)
    for data, status, text in (({"queue": "events", "job_id": "nope"}, 404, "not among"),
                               ({"queue": "bogus", "job_id": "nope"}, 400, "no queue")):
        reply = await post_form(hub_client, "/ops/jobs/replay", data, token_from="/ops/jobs")
        assert reply.status == status
        assert text in await reply.text()
    reply = await hub_client.post("/ops/jobs/replay", data={"queue": "events", "job_id": "x"})
    assert reply.status == 403  # no CSRF token


async def test_the_jobs_page_says_when_redis_is_unreachable(aiohttp_client, hub_config, engine):
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    client = await aiohttp_client(create_app(hub_config, engine, dead))
    await as_operator(client, engine)
    reply = await client.get("/ops/jobs")
    assert reply.status == 503
    assert "can not be reached" in await reply.text()


def test_errors_are_shortened_and_secrets_masked():
    trace = ('Traceback (most recent call last):\n'
             '  File "/srv/app/workers/jobs.py", line 42, in drain\n    x()\n'
             'ConnectionError: redis://:hunter2pass@db:6379 refused token sekrit-token-value\n')
    assert short_error(trace, ["sekrit-token-value"]) == (
        "ConnectionError: redis://:***@db:6379 refused token *** (jobs.py:42 in drain)")
    database = ('Traceback (most recent call last):\n'
                '  File "/srv/app/workers/jobs.py", line 55, in process_batch\n    ingest()\n'
                'sqlalchemy.exc.OperationalError: (psycopg.OperationalError) server closed\n'
                '[SQL: INSERT INTO flattrs (giver_id) VALUES (%(giver_id)s)]\n'
                '(Background on this error at: https://sqlalche.me/e/20/e3q8)\n')
    assert short_error(database) == ("sqlalchemy.exc.OperationalError: (psycopg.OperationalError)"
                                     " server closed (jobs.py:55 in process_batch)")
    assert len(short_error("E: " + "x" * 1000)) == 300
    assert short_error(None) == "(no error recorded)"


async def test_settlement_runs_are_listed_after_a_settlement(hub_client, engine, hub_config):
    make_user(engine, hub_config, "ana", budget=500, funds=2000, github="1")
    make_user(engine, hub_config, "bo", budget=200, funds=300, github="2")
    feed(engine, star("1", "r1", "2", "2026-06-03T12:00:00"),
         star("2", "r2", "1", "2026-06-04T12:00:00"))
    settle(engine, "2026-06", hub_config.money)
    await as_operator(hub_client, engine)
    page = await (await hub_client.get("/ops/settlements")).text()
    [_header, run] = table_rows(page, "settlement-runs")
    assert run[:6] == ["2026-06", "done", "2", "2", "7.00 EUR", "0.70 EUR"]
    assert run[7].endswith(" s")


def settle_parts(page: str) -> tuple[str, str]:
    """The months-due line and the settlement-job line of /ops/settlements, as text."""
    found = [re.search(rf'<p id="{name}">(.*?)</p>', page, re.S) for name in
             ("months-due", "settlement-job")]
    assert all(found), page
    return tuple(" ".join(match.group(1).split()) for match in found)


@pytest.mark.settings({"settlement": {"day": 1, "time": "00:00"}})  # last month is due, always
async def test_the_settle_button_queues_one_job_that_the_worker_runs(
        hub_client, engine, hub_config, worker_context, redis):
    last_month = add_months(month_of(utcnow()), -1)
    make_user(engine, hub_config, "ana", budget=500, funds=2000, github="1")
    make_user(engine, hub_config, "bo", budget=200, funds=300, github="2")
    feed(engine, star("1", "r1", "2", f"{last_month}-03T12:00:00"),
         star("2", "r2", "1", f"{last_month}-04T12:00:00"))
    await as_operator(hub_client, engine)
    page = await (await hub_client.get("/ops/settlements")).text()
    assert settle_parts(page) == (f"Ended months not settled yet: {last_month}.",
                                  "No settlement job is waiting or running.")
    assert "No month has been settled yet." in page

    settlement = queue("settlement", redis)
    for pressed, outcome in ((1, "queued"), (2, "waiting")):
        reply = await post_form(hub_client, "/ops/settlements/settle", {},
                                token_from="/ops/settlements")
        assert (reply.status, reply.headers["Location"]) == (
            303, f"/ops/settlements?settle={outcome}"), pressed
        assert settlement.count == 1, pressed
    [job] = settlement.jobs
    assert job.func_name == "workers.jobs.settle_due"
    page = await (await hub_client.get(reply.headers["Location"])).text()
    assert "A settlement job was already waiting" in page
    assert settle_parts(page)[1] == "1 settlement job(s) waiting."
    lock = redis.lock(SETTLE_LOCK, timeout=60)
    assert lock.acquire(blocking=False)
    page = await (await hub_client.get("/ops/settlements")).text()
    assert settle_parts(page)[1] == "A settlement job is running. 1 settlement job(s) waiting."
    lock.release()

    run_worker(worker_context, burst=True)
    assert (settlement.count, FailedJobRegistry("settlement", connection=redis).count) == (0, 0)
    page = await (await hub_client.get("/ops/settlements")).text()
    assert settle_parts(page) == ("Every ended month is settled.",
                                  "No settlement job is waiting or running.")
    [_header, run] = table_rows(page, "settlement-runs")
    assert run[:6] == [last_month, "done", "2", "2", "7.00 EUR", "0.70 EUR"]


async def test_the_settle_button_needs_a_csrf_token_and_redis(hub_client, aiohttp_client,
                                                             hub_config, engine, redis):
    await as_operator(hub_client, engine)
    reply = await hub_client.post("/ops/settlements/settle", allow_redirects=False)
    assert reply.status == 403
    assert queue("settlement", redis).count == 0

    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    client = await aiohttp_client(create_app(hub_config, engine, dead))
    await as_operator(client, engine, "otto")
    reply = await client.get("/ops/settlements")
    assert reply.status == 503
    page = await reply.text()
    assert "can not be reached" in page and "Settle ended months now" in page
    reply = await post_form(client, "/ops/settlements/settle", {}, token_from="/ops/settlements")
    assert reply.status == 503
    assert "can not be reached" in await reply.text()


async def test_the_self_check_button_reports_ok_and_problems(hub_client, engine, hub_config):
    make_user(engine, hub_config, "ana", budget=500, funds=2000)
    await as_operator(hub_client, engine)
    assert "Run the self-check" in await (await hub_client.get("/ops/verify")).text()
    reply = await post_form(hub_client, "/ops/verify", {}, token_from="/ops/verify")
    assert reply.status == 200
    assert "OK: all invariants hold." in await reply.text()
    with engine.begin() as conn:
        conn.execute(update(accounts_table).where(accounts_table.c.kind == "funds")
                     .values(balance=accounts_table.c.balance + 1))
    text = await (await post_form(hub_client, "/ops/verify", {}, token_from="/ops/verify")).text()
    assert "OK:" not in text and "problem(s) found" in text


async def test_rq_dashboard_is_served_to_operators_only(hub_client, engine, redis):
    queue("events", redis).enqueue("workers.jobs.drain")
    await sign_up(hub_client, "max")
    assert (await hub_client.get("/ops/rq/")).status == 403
    hub_client.session.cookie_jar.clear()
    await as_operator(hub_client, engine)
    reply = await hub_client.get("/ops/rq", allow_redirects=False)
    assert (reply.status, reply.headers["Location"]) == (303, "/ops/rq/")
    page = await hub_client.get("/ops/rq/")
    assert page.status == 200
    html = await page.text()
    assert "<title>RQ dashboard</title>" in html and "/ops/rq/static/" in html
    assert (await hub_client.get("/ops/rq/static/css/main.css")).status == 200
    data = await (await hub_client.get("/ops/rq/0/data/queues.json")).json()
    assert {"name": "events", "count": 1}.items() <= next(
        q for q in data["queues"] if q["name"] == "events").items()

    cookie = hub_client.session.cookie_jar.filter_cookies(
        hub_client.make_url("/ops/rq/"))["_csrf_token"].value
    [job_id] = queue("events", redis).job_ids
    assert (await hub_client.post(f"/ops/rq/job/{job_id}/delete")).status == 403
    reply = await hub_client.post(f"/ops/rq/job/{job_id}/delete",
                                  headers={"X-CSRFToken": cookie})
    assert reply.status == 200 and queue("events", redis).count == 0
    assert (await hub_client.get("/ops/rq/requeue/events")).status == 405


@pytest.fixture
def cli(db_url, hub_config, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLATTR_DATABASE_URL", db_url)
    monkeypatch.setenv("FLATTR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.chdir(tmp_path)

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def test_the_first_operator_is_made_on_the_command_line(cli, hub_client, engine):
    assert cli("user", "create", "olga")[0] == 0
    assert cli("user", "password", "olga", stdin=PASSWORD + "\n") == (
        0, "password of olga set\n", "")
    assert cli("user", "operator", "olga") == (0, "olga is an operator\n", "")
    assert (await log_in(hub_client, "olga")).status == 303
    assert (await hub_client.get("/ops")).status == 200
    assert cli("user", "operator", "olga", "--revoke") == (0, "olga is no longer an operator\n", "")
    assert (await hub_client.get("/ops")).status == 403


def test_user_commands_refuse_bad_input_in_one_line(cli):
    cli("user", "create", "olga")
    for argv, stdin, message in (
            (("user", "password", "olga"), "short\n", "at least 10"),
            (("user", "password", "olga"), "", "no password on stdin"),
            (("user", "password", "nobody"), PASSWORD + "\n", "nobody"),
            (("user", "operator", "nobody"), "", "nobody")):
        code, out, err = cli(*argv, stdin=stdin)
        assert (code, out) == (2, ""), argv
        assert err.count("\n") == 1 and message in err, err


async def test_the_index_shows_each_configured_stream_with_its_liveness(
        aiohttp_client, hub_config, engine, redis):
    hub_config = with_overrides(hub_config, {"connectors.discord.bot_token": "bot-token"})
    client = await aiohttp_client(create_app(hub_config, engine, redis))
    await as_operator(client, engine)
    [_, row] = table_rows(await (await client.get("/ops")).text(), "streams")
    assert row[1:] == ["not connected (never heard from)", "none yet", ""]
    writer = StatusWriter(redis, "discord")
    writer.connected()
    writer.event(datetime.now(UTC) - timedelta(seconds=2.5))
    [_, row] = table_rows(await (await client.get("/ops")).text(), "streams")
    assert row[1] == "connected" and "ago" in row[2]
    assert float(row[3].removesuffix(" s")) >= 2.5


async def test_the_index_says_when_no_stream_is_configured_or_redis_is_down(
        hub_client, aiohttp_client, hub_config, engine):
    await as_operator(hub_client, engine, "olga")
    assert "No stream connector is configured" in await (await hub_client.get("/ops")).text()
    hub_config = with_overrides(hub_config, {"connectors.discord.bot_token": "bot-token"})
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    client = await aiohttp_client(create_app(hub_config, engine, dead))
    await as_operator(client, engine, "otto")
    [_, row] = table_rows(await (await client.get("/ops")).text(), "streams")
    assert row[:2] == ["discord bot", "unknown (Redis does not answer)"]
