"""`serve` answers `POST /webhooks/<platform>` before aiohttp's application
(`hub.app.WebhookShortcut`): the same answers as through the application, for every kind of
delivery, and only for the requests it should take. A response signal that the test adds to
the application marks the answers that went through it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from hub.app import INTAKE, SHORTCUT, WebhookShortcut, answer_webhooks_first, create_app
from hub.simulate import github_headers, github_star
from pipeline.inbox import inbox
from tests.hub_helpers import GITHUB_SECRET

pytest_plugins = ["tests.hub_fixtures"]

MARK = "X-Test-Through-Application"


async def marked_hub(aiohttp_client: Any, hub_config, engine, redis, *, shortcut: bool) -> Any:
    app = create_app(hub_config, engine, redis)

    async def mark(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers[MARK] = "yes"

    app.on_response_prepare.append(mark)
    client = await aiohttp_client(app)
    if shortcut:
        answer_webhooks_first(client.server.runner)
    return client


def star(delivery: str) -> tuple[bytes, dict[str, str]]:
    return github_star(GITHUB_SECRET, sender=1, repo=2, owner=3, delivery=delivery)


def forged(delivery: str) -> tuple[bytes, dict[str, str]]:
    body, headers = star(delivery)
    return body, {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}


def malformed(delivery: str) -> tuple[bytes, dict[str, str]]:
    body = b'{"action": "exploded"}'
    return body, github_headers(GITHUB_SECRET, body, "star", delivery)


def too_large(delivery: str) -> tuple[bytes, dict[str, str]]:
    body = b"{" + b" " * 5000 + b"}"
    return body, github_headers(GITHUB_SECRET, body, "star", delivery)


def answer_of(response: Any, body: bytes) -> tuple[int, Any, dict[str, str]]:
    kept = ("Content-Type", "Content-Security-Policy", "X-Frame-Options",
            "X-Content-Type-Options", "Referrer-Policy")
    return (response.status, json.loads(body),
            {name: response.headers.get(name, "") for name in kept})


@pytest.mark.parametrize("delivery", [star, forged, malformed, too_large])
async def test_the_shortcut_answers_as_the_application_does(aiohttp_client, hub_config, engine,
                                                            redis, delivery) -> None:
    answers = {}
    for shortcut in (False, True):
        client = await marked_hub(aiohttp_client, hub_config, engine, redis, shortcut=shortcut)
        body, headers = delivery(f"d-{delivery.__name__}-{shortcut}")
        response = await client.post("/webhooks/github", data=body, headers=headers)
        answers[shortcut] = answer_of(response, await response.read())
        assert response.headers["X-Request-ID"]
        assert (MARK in response.headers) is not shortcut
    assert answers[True] == answers[False]
    assert answers[True][0] == {star: 202, forged: 401, malformed: 400, too_large: 413}[delivery]


async def test_the_shortcut_stores_what_it_accepts(aiohttp_client, hub_config, engine,
                                                   redis) -> None:
    client = await marked_hub(aiohttp_client, hub_config, engine, redis, shortcut=True)
    body, headers = star("d-stored")
    response = await client.post("/webhooks/github", data=body,
                                 headers={**headers, "X-Request-ID": "req-shortcut-1"})
    assert response.status == 202 and MARK not in response.headers
    assert response.headers["X-Request-ID"] == "req-shortcut-1"
    with engine.connect() as conn:
        row = conn.execute(select(inbox.c.event_id, inbox.c.hub_request_id)).one()
    assert tuple(row) == ("d-stored", "req-shortcut-1")


@pytest.mark.parametrize("method, path, extra, status, routed", [
    ("POST", "/webhooks/nowhere", {}, 404, True),  # no connector: the application's 404
    ("POST", "/webhooks/github/", {}, 404, True),  # another path
    ("GET", "/webhooks/github", {}, 405, True),
    ("POST", "/webhooks/github", {"Expect": "100-continue"}, 202, True),
    ("POST", "/webhooks/stripe", {}, 404, True),  # a route of its own (off in this configuration)
    ("POST", "/webhooks/git%68ub", {}, 202, False),  # the decoded path, as the router reads it
])
async def test_the_application_keeps_what_the_shortcut_does_not_take(
        aiohttp_client, hub_config, engine, redis, method, path, extra, status, routed) -> None:
    client = await marked_hub(aiohttp_client, hub_config, engine, redis, shortcut=True)
    body, headers = star(f"d-{status}-{len(extra)}-{path[-3:]}")
    response = await client.request(method, path, data=body, headers={**headers, **extra})
    assert response.status == status
    assert (MARK in response.headers) is routed
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(inbox)).scalar_one()
    assert stored == (1 if status == 202 else 0)


def test_paths_with_post_routes_of_their_own_stay_with_the_application(hub_config, engine,
                                                                       redis) -> None:
    app = create_app(hub_config, engine, redis)
    intake = app[INTAKE]
    assert set(app[SHORTCUT].paths) == {f"/webhooks/{name}" for name in intake.connectors}
    assert "/webhooks/github" in app[SHORTCUT].paths
    own = WebhookShortcut(intake, app[SHORTCUT].secure, {"/webhooks/github"})
    assert "/webhooks/github" not in own.paths
    assert set(own.paths) == set(app[SHORTCUT].paths) - {"/webhooks/github"}
