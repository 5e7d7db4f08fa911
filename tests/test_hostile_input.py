"""No 5xx for a client's mistake (issue 11, finding 2): each case the issue lists, answered 4xx
with an error body, changing nothing, and the ledger still verifying."""

from __future__ import annotations

import json

from ledger.verify import verify
from pipeline import inbox
from tests.hostile_helpers import SIGNERS, Hostile

pytest_plugins = ["tests.hub_fixtures", "tests.hostile_fixtures"]

FORM_POSTS = ("/login", "/signup", "/logout", "/oauth/authorize", "/oauth/token",
              "/money/budget", "/money/funds", "/money/revenue-to-funds",
              "/money/payout-details", "/money/payouts", "/rest/v2/things/{thing}",
              "/rest/v2/things", "/sites", "/settings/webhooks", "/ops/verify")
NESTED = b"[" * 3000 + b"]" * 3000
HUGE_INT = b"1" + b"0" * 5000


def star(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "action": "created", "starred_at": "2026-10-03T14:12:09Z",
        "repository": {"id": 5, "full_name": "bo/repo", "html_url": "https://github.com/bo/repo",
                       "owner": {"id": 2}}, "sender": {"id": 1}}
    payload.update(changes)
    return payload


def relay(**changes: object) -> dict[str, object]:
    return {"type": "like", "platform": "soundcloud", "actor_id": "10", "content_id": "t-1",
            "owner_id": "20", "occurred_at": "2026-11-20T10:00:00Z", **changes}


def discord_command(options: object) -> dict[str, object]:
    return {"type": 2, "id": "1211122334455667788", "user": {"id": "5"},
            "data": {"type": 1, "name": "flattr", "options": options}}


async def assert_refused(reply, engine, *, statuses=range(400, 500)) -> None:
    assert reply.status in statuses, (reply.status, await reply.text())
    assert reply.status < 500
    with engine.connect() as conn:
        assert inbox.pending_count(conn) == 0
        assert verify(conn) == []


FORM_BODIES = [
    (b"garbage", "multipart/form-data; boundary=x"),
    (b"name=%ff\xff\xfe&csrf_token=\xff", "application/x-www-form-urlencoded"),
    (b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\xfe\r\n--x--\r\n",
     "multipart/form-data; boundary=x"),
]
JSON_POSTS = [("PATCH", "/rest/v2/things/{thing}"), ("POST", "/rest/v2/things"),
              ("POST", "/oauth/token")]
JSON_BODIES = [NESTED, b'{"title": ' + HUGE_INT + b"}", b'{"title": "\\ud800"}']
NUMBER_PATHS = ["/things?page=%C2%B2", "/notifications/optout/%C2%B2.x",
                "/things/" + "9" * 18, "/rest/v2/things/" + "9" * 18, "/things/%D9%A3",
                "/rest/v2/things?page=%C2%B2", "/rest/v2/things?count=" + "9" * 5000]


async def test_unreadable_form_bodies_are_400(hostile: Hostile, engine):
    for path in FORM_POSTS:
        for body, content_type in FORM_BODIES:
            reply = await hostile.client.post(
                path.format(thing=hostile.thing_id), data=body,
                headers={"Content-Type": content_type, "X-CSRF-Token": hostile.csrf,
                         "Authorization": f"Bearer {hostile.rest_token}"})
            await assert_refused(reply, engine)


async def test_nul_characters_in_queries_and_forms_are_400(hostile: Hostile, engine):
    """No field of ours holds a NUL, and PostgreSQL refuses one in a query parameter: it is
    refused at the door (it was a 500 from /rest/v2/things/search?user=)."""
    for path in ("/rest/v2/things/search?user=a%00b", "/rest/v2/users/a%00b/things",
                 "/things?query=%00", "/login?next=%00"):
        reply = await hostile.client.get(path, headers={
            "Accept": "application/json", "Authorization": f"Bearer {hostile.rest_token}"})
        await assert_refused(reply, engine)
    for path in FORM_POSTS:
        reply = await hostile.client.post(
            path.format(thing=hostile.thing_id), data={"name": "a\x00b", "title": "\x00"},
            headers={"X-CSRF-Token": hostile.csrf,
                     "Authorization": f"Bearer {hostile.rest_token}"})
        await assert_refused(reply, engine)


async def test_deep_or_unreadable_json_is_400(hostile: Hostile, engine):
    for method, path in JSON_POSTS:
        for body in JSON_BODIES:
            reply = await hostile.client.request(
                method, path.format(thing=hostile.thing_id), data=body,
                headers={"Content-Type": "application/json",
                         "Authorization": f"Bearer {hostile.rest_token}"})
            await assert_refused(reply, engine)
            assert "error" in await reply.json()


async def test_unicode_or_huge_numbers_in_paths_and_queries(hostile: Hostile, engine):
    for path in NUMBER_PATHS:
        reply = await hostile.client.get(path, headers={"Accept": "application/json"})
        assert reply.status < 500, (path, await reply.text())


async def test_discord_timestamp_of_400_nines_is_401(hostile: Hostile, engine):
    reply = await hostile.client.post("/webhooks/discord", data=b"{}", headers={
        "X-Signature-Ed25519": "00" * 64, "X-Signature-Timestamp": "9" * 400})
    await assert_refused(reply, engine, statuses=(401,))


SIGNED_CASES = [
    *[(name, NESTED) for name in SIGNERS],
    *[(name, b'{"id": ' + HUGE_INT + b"}") for name in SIGNERS],
    ("github", json.dumps(star(starred_at="0001-01-01T00:30:00+01:00")).encode()),
    ("github", json.dumps(star(starred_at="9999-12-31T23:30:00-01:00")).encode()),
    ("github", json.dumps(star(action=["created"])).encode()),
    ("github", json.dumps(star(sender={"id": 2**70})).encode()),
    ("relay", json.dumps(relay(occurred_at=10**40)).encode()),
    ("relay", json.dumps(relay(occurred_at=-(10**18))).encode()),
    ("relay", json.dumps(relay(type=["like"])).encode()),
    ("discord", json.dumps(discord_command(["not an object", 3])).encode()),
    ("discord", json.dumps(discord_command({"name": "message"})).encode()),
    ("stripe", json.dumps({"id": "evt_1", "type": "checkout.session.completed", "data": [1]})
     .encode()),
]


async def test_signed_but_malformed_payloads_are_4xx(hostile: Hostile, engine):
    for platform, body in SIGNED_CASES:
        reply = await hostile.client.post(f"/webhooks/{platform}", data=body,
                                          headers=SIGNERS[platform](body))
        assert reply.status < 500, (platform, body[:80], await reply.text())
    with engine.connect() as conn:
        assert inbox.pending_count(conn) == 0
        assert verify(conn) == []
