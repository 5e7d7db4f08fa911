"""Structured logs: one JSON object per line, a request id on every request (taken from a
well-formed X-Request-ID or made up) that comes back in the response, goes into the inbox with
each webhook event and into the worker's log of the batch, and rides along in the jobs a
request enqueues; no secret or signature is ever logged."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from sqlalchemy import select

from base import logs
from base.config import ConfigError, with_overrides
from hub.simulate import github_headers, github_star, standard_headers
from pipeline.inbox import Entry, inbox, store
from pipeline.queues import queue
from tests.hub_helpers import GITHUB_SECRET, RELAY_SECRET, seed_github_users
from tests.ledger_helpers import star
from workers.worker import run_worker

pytest_plugins = ["tests.hub_fixtures"]

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def json_logs(hub_config, capsys):
    """Logs as configured by the command line, at debug level; `read()` parses what was logged
    since the last call: (raw text, [objects])."""
    hub_config = with_overrides(hub_config, {"log.level": "debug"})
    logs.configure(hub_config)
    capsys.readouterr()

    def read() -> tuple[str, list[dict]]:
        err = capsys.readouterr().err
        return err, [json.loads(line) for line in err.splitlines() if line.startswith("{")]

    yield read
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logs.StderrHandler)]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()


def events(lines: list[dict], name: str) -> list[dict]:
    return [line for line in lines if line["event"] == name]


def test_client_libraries_never_log_request_headers_even_at_debug(json_logs):
    """tweepy, requests-oauthlib and urllib3 log request headers (bearer tokens) at DEBUG: the
    logging set-up keeps them at INFO; importing the pollers changes no logger's level."""
    imported = subprocess.run(
        [sys.executable, "-c", "import logging, connectors.polling, connectors.x, "
         "connectors.soundcloud, connectors.mastodon; print([logging.getLogger(n).level "
         "for n in ('tweepy', 'requests_oauthlib', 'urllib3')])"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert imported.stdout.strip() == "[0, 0, 0]"
    for name in ("tweepy.client", "requests_oauthlib.oauth2_session", "urllib3.connectionpool"):
        logging.getLogger(name).debug("Authorization: Bearer secret-token")
        logging.getLogger(name).info("request sent")
    raw, _ = json_logs()
    assert "secret-token" not in raw and raw.count("request sent") == 3
    assert logging.getLogger("hub").getEffectiveLevel() == logging.DEBUG


async def test_every_answer_carries_a_request_id(hub_client):
    made = await hub_client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    again = await hub_client.get("/healthz")
    assert again.headers["X-Request-ID"] != made.headers["X-Request-ID"]
    kept = await hub_client.get("/nowhere", headers={"X-Request-ID": "proxy-7f3a:1"})
    assert (kept.status, kept.headers["X-Request-ID"]) == (404, "proxy-7f3a:1")
    for bad in ("has spaces", "x" * 129, "<script>", "-leading-dash"):
        reply = await hub_client.get("/healthz", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["X-Request-ID"]), bad
    redirect = await hub_client.get("/ops", allow_redirects=False)
    assert redirect.status == 303 and "X-Request-ID" in redirect.headers


async def test_the_request_id_goes_from_the_webhook_to_the_worker_log(
        hub_client, engine, hub_config, worker_context, json_logs):
    seed_github_users(engine, hub_config)
    body, headers = github_star(GITHUB_SECRET, sender=1, repo=5, owner=2)
    sent = await hub_client.post("/webhooks/github", data=body,
                                 headers={**headers, "X-Request-ID": "edge-req-1"})
    assert (sent.status, sent.headers["X-Request-ID"]) == (202, "edge-req-1")
    body, headers = github_star(GITHUB_SECRET, sender=1, repo=6, owner=2)
    made = (await hub_client.post("/webhooks/github", data=body, headers=headers))
    made_id = made.headers["X-Request-ID"]
    with engine.connect() as conn:
        stored = conn.execute(select(inbox.c.hub_request_id).order_by(inbox.c.id)).scalars()
        assert list(stored) == ["edge-req-1", made_id]
    run_worker(worker_context, burst=True)
    _, lines = json_logs()
    [batch] = events(lines, "inbox_batch_recorded")
    assert batch["request_ids"] == ["edge-req-1", made_id]
    assert batch["rows"] == 2 and batch["outcomes"] == {"flattred": 2}
    assert batch["logger"] == "workers.jobs" and batch["level"] == "info"


async def test_a_job_enqueued_under_a_request_id_logs_it(engine, hub_config, worker_context,
                                                         redis, json_logs):
    seed_github_users(engine, hub_config)
    with structlog.contextvars.bound_contextvars(request_id="replay-req-9"):
        job = queue("events", redis).enqueue("workers.jobs.drain")
    assert job.meta == {"request_id": "replay-req-9"}
    assert queue("events", redis).enqueue("workers.jobs.sweep").meta == {}
    store(engine, [Entry(star("1", "repo-1", "2", "2026-10-03T12:00:00", event_id="e-1"), "e-1")])
    run_worker(worker_context, burst=True)
    _, lines = json_logs()
    [batch] = events(lines, "inbox_batch_recorded")
    assert (batch["request_id"], batch["job_id"], batch["job"]) == (
        "replay-req-9", job.id, "workers.jobs.drain")
    assert "request_id" not in structlog.contextvars.get_contextvars()


async def test_no_secret_or_signature_is_logged(hub_client, engine, hub_config, worker_context,
                                                json_logs):
    seed_github_users(engine, hub_config)
    signatures = []
    body, headers = github_star(GITHUB_SECRET, sender=1, repo=5, owner=2)
    assert (await hub_client.post("/webhooks/github", data=body, headers=headers)).status == 202
    signatures.append(headers["X-Hub-Signature-256"])
    forged = github_headers("not the secret", body, "star", "forged-1")
    rejected = await hub_client.post("/webhooks/github", data=body, headers=forged)
    assert rejected.status == 401
    signatures.append(forged["X-Hub-Signature-256"])
    relay_body = (FIXTURES / "relay-soundcloud-like.json").read_bytes()
    relay = standard_headers(RELAY_SECRET, relay_body, "msg_1")
    assert (await hub_client.post("/webhooks/relay", data=relay_body, headers=relay)).status == 202
    signatures.append(relay["webhook-signature"])
    tampered = {**relay, "webhook-signature": relay["webhook-signature"][:-4] + "AAA="}
    assert (await hub_client.post("/webhooks/relay", data=relay_body,
                                  headers=tampered)).status == 401
    signatures.append(tampered["webhook-signature"])
    run_worker(worker_context, burst=True)

    text, lines = json_logs()
    [github_rejected, relay_rejected] = events(lines, "webhook_rejected")
    assert github_rejected["request_id"] == rejected.headers["X-Request-ID"]
    assert relay_rejected["platform"] == "relay"
    assert events(lines, "inbox_batch_recorded")
    secrets = [GITHUB_SECRET, RELAY_SECRET, RELAY_SECRET.removeprefix("whsec_")]
    for secret in secrets + signatures:
        assert secret not in text
    for signature in signatures:  # nor the digest alone ("sha256=<hex>", "v1,<base64>")
        digest = re.split(r"[=,]", signature, maxsplit=1)[1]
        assert len(digest) > 20 and digest not in text


def test_bad_log_settings_are_refused(hub_config):
    hub_config = with_overrides(hub_config, {"log.level": "loud"})
    with pytest.raises(ConfigError, match=r"log\.level"):
        logs.configure(hub_config)
    hub_config = with_overrides(hub_config, {"log": {"level": "info", "format": "xml"}})
    with pytest.raises(ConfigError, match=r"log\.format"):
        logs.configure(hub_config)
