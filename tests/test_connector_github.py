"""GitHub star connector: signature (published vector), normalisation, ping and errors."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from base.config import with_overrides
from connectors.base import PayloadError, SignatureError
from connectors.github import CONNECTOR, _star, _usual_star
from connectors.registry import default_config
from hub.simulate import github_headers

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "It's a Secret to Everybody"
CONFIG = with_overrides(default_config(), {"connectors": {"github": {"webhook_secret": SECRET}}})


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_published_test_vector_verifies() -> None:
    headers = {"X-Hub-Signature-256":
               "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    CONNECTOR.verifier.verify(CONFIG.connectors["github"], b"Hello, World!", headers)


@pytest.mark.parametrize("signature", [
    "", "sha256=", "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18",
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
    "sha256=ünïcode",
])
def test_forged_or_missing_signatures_are_refused(signature: str) -> None:
    headers = {"X-Hub-Signature-256": signature} if signature else {}
    with pytest.raises(SignatureError) as caught:
        CONNECTOR.verifier.verify(CONFIG.connectors["github"], b"Hello, World!", headers)
    assert SECRET not in str(caught.value)
    assert "757107" not in str(caught.value)


def test_one_changed_byte_of_the_body_is_refused() -> None:
    headers = {"X-Hub-Signature-256":
               "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    with pytest.raises(SignatureError):
        CONNECTOR.verifier.verify(CONFIG.connectors["github"], b"Hello, World?", headers)


def test_star_created_fixture_becomes_a_like() -> None:
    body = fixture("github-star-created.json")
    events, reply = CONNECTOR.accept(CONFIG, body, github_headers(SECRET, body, "star", "d-1"))
    assert reply == {"accepted": 1}
    [event] = events
    assert event.to_dict() == {
        "event_id": "d-1", "platform": "github", "kind": "like", "actor_id": "9912004",
        "content_id": "513384129", "owner_id": "48213377",
        "occurred_at": "2026-10-03T14:12:09.000000Z",
        "url": "https://github.com/maren-k/tinyledger", "title": "maren-k/tinyledger",
    }


def test_star_deleted_fixture_becomes_an_unlike_dated_now() -> None:
    body = fixture("github-star-deleted.json")
    before = datetime.utcnow().replace(microsecond=0)
    [event], _ = CONNECTOR.accept(CONFIG, body, github_headers(SECRET, body, "star", "d-2"))
    assert (event.kind, event.actor_id, event.content_id, event.owner_id) == (
        "unlike", "9912004", "513384129", "48213377")
    assert event.url == "https://github.com/maren-k/tinyledger"
    assert before <= event.occurred_at <= datetime.utcnow()


def test_ping_and_other_events_record_nothing() -> None:
    body = json.dumps({"zen": "Design for failure.", "hook_id": 1}).encode()
    assert CONNECTOR.accept(CONFIG, body, github_headers(SECRET, body, "ping", "d-3")) == (
        [], {"accepted": 0})
    body = fixture("github-star-created.json")
    assert CONNECTOR.accept(CONFIG, body, github_headers(SECRET, body, "push", "d-4"))[0] == []


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.update(action="edited"), "star action must be created or deleted"),
    (lambda p: p.pop("sender"), "payload lacks sender"),
    (lambda p: p["repository"]["owner"].pop("id"), "payload lacks repository.owner.id"),
    (lambda p: p.update(starred_at="yesterday"), "occurred_at must be an ISO 8601 time"),
])
def test_malformed_star_payloads_are_refused(mutate, message: str) -> None:
    payload = json.loads(fixture("github-star-created.json"))
    mutate(payload)
    body = json.dumps(payload).encode()
    with pytest.raises(PayloadError, match=message):
        CONNECTOR.accept(CONFIG, body, github_headers(SECRET, body, "star", "d-5"))


def test_signed_garbage_and_missing_delivery_id_are_payload_errors() -> None:
    with pytest.raises(PayloadError, match="not JSON"):
        CONNECTOR.accept(CONFIG, b"\xff{", github_headers(SECRET, b"\xff{", "star", "d-6"))
    body = fixture("github-star-created.json")
    headers = github_headers(SECRET, body, "star", "")
    with pytest.raises(PayloadError, match="X-GitHub-Delivery"):
        CONNECTOR.accept(CONFIG, body, headers)


def test_connector_is_off_without_its_secret() -> None:
    assert CONNECTOR.enabled(CONFIG)
    assert not CONNECTOR.enabled(default_config())


def _outcome(build, payload: dict) -> object:
    try:
        made = build(payload, "d-7", "like")
    except PayloadError as exc:
        return f"refused: {exc}"
    if made is None:
        return None
    found = made.to_dict()
    if payload.get("starred_at") in (None, ""):
        found.pop("occurred_at")  # now, which differs by the time between the two calls
    return found


@pytest.mark.parametrize("mutate", [
    lambda p: None,
    lambda p: p.update(starred_at="2026-10-03T16:12:09+02:00"),
    lambda p: p.update(starred_at=None),
    lambda p: p.update(starred_at=""),
    lambda p: p.update(starred_at="2990-01-01T00:00:00Z"),
    lambda p: p.update(starred_at=1_791_036_729_000),
    lambda p: p["sender"].update(id="9912004"),
    lambda p: p["sender"].update(id=-5),
    lambda p: p["sender"].update(id=True),
    lambda p: p["repository"].update(id=2**63),
    lambda p: p["repository"]["owner"].update(id=None),
    lambda p: p["repository"].pop("html_url"),
    lambda p: p["repository"].update(html_url="javascript:alert(1)"),
    lambda p: p["repository"].pop("full_name"),
    lambda p: p["repository"].update(full_name="a\x00b"),
    lambda p: p["repository"].update(full_name="x" * 513),
    lambda p: p.update(sender=[1]),
])
def test_the_usual_star_shortcut_builds_what_the_full_checks_build(mutate) -> None:
    """`_usual_star` (the webhook path) either declines (None: `_star` then takes the
    delivery) or builds the same event, or refuses with the same message, as `_star`."""
    payload = json.loads(fixture("github-star-created.json"))
    mutate(payload)
    usual = _outcome(_usual_star, payload)
    assert usual is None or usual == _outcome(_star, payload)


def test_a_star_as_github_sends_it_takes_the_shortcut() -> None:
    payload = json.loads(fixture("github-star-created.json"))
    assert _usual_star(payload, "d-8", "like") == _star(payload, "d-8", "like")
    assert _usual_star(payload, "d-8", "like") is not None
