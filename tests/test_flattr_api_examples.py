"""Every example request and answer of Flattr's REST API v2 documentation
(flattr/developers.flattr.net, copied as data into tests/fixtures/flattr_api_v2_examples.json),
replayed against the hub in one story (a member flattrs, subscribes, creates things…): the
status, the headers the example names, and every documented field with its type. Where the
documentation gives a field table (users, things, flattrs), its fields are checked too."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from ledger.verify import verify
from members.apps import issue_code, register_app
from tests.rest_helpers import bearer, member, thing, token

pytest_plugins = ["tests.hub_fixtures"]

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "flattr_api_v2_examples.json")
                     .read_text(encoding="utf-8"))
EXAMPLES = {example["name"]: example for example in FIXTURE["examples"]}
API = "https://api.flattr.com/rest/v2"
DOC_BLOG = "http://blog.flattr.net/2011/10/api-v2-beta-out-whats-changed/"
POST = "https://bo.example/2011/api-v2"
GEM = "https://bo.example/flattr-gem"
LITERAL = ("type", "message", "error", "token_type", "verb", "objectType")
TYPES = {"string": str, "int": int, "bool": bool, "array": list, "hash": dict}

# (example, whose token (None: anonymous), the path's :username / :id / :url, body changes)
STORY: list[tuple[str, str | None, dict[str, Any], dict[str, Any] | None]] = [
    ("list_categories", None, {}, None),
    ("list_languages", None, {}, None),
    ("rate_limit", "ana", {}, None),
    ("client_error", None, {}, None),
    ("get_user", None, {"username": "bo"}, None),
    ("get_user_not_found", None, {"username": "nobody"}, None),
    ("get_authenticated_user", "ana_read", {}, None),
    ("get_authenticated_user_unauthorized", None, {}, None),
    ("get_authenticated_user_extendedread", "ana", {}, None),
    ("get_thing_public", None, {"id": "post"}, None),
    ("get_thing_not_found", None, {"id": 999999}, None),
    ("flattr_thing", "ana", {"id": "post"}, None),
    ("flattr_thing_once", "ana", {"id": "post"}, None),
    ("flattr_thing_owner", "bo", {"id": "post"}, None),
    ("flattr_thing_no_means", "cy", {"id": "post"}, None),
    ("flattr_thing_not_found", "ana", {"id": 999999}, None),
    ("create_subscription", "ana", {"id": "post"}, None),
    ("create_subscription_subscribed", "ana", {"id": "post"}, None),
    ("create_subscription_thing_owner", "bo", {"id": "post"}, None),
    ("create_subscription_insufficient_scope", "ana_read", {"id": "gem"}, None),
    ("create_subscription_not_found", "ana", {"id": 999999}, None),
    ("get_thing_not_owner", "ana", {"id": "post"}, None),
    ("get_thing_owner", "bo", {"id": "post"}, None),
    ("get_things_many", None, {"id": ["post", "gem"]}, None),
    ("list_user_things", "ana", {"username": "bo"}, None),  # flattred: with a token
    ("list_user_things_not_found", None, {"username": "nobody"}, None),
    ("list_authenticated_user_things", "bo", {}, None),
    ("list_authenticated_user_things_unauthorized", None, {}, None),
    ("lookup_found", None, {"url": POST}, None),
    ("lookup_not_found", None, {"url": "https://nowhere.example/"}, None),
    ("lookup_auto_submit", None, {}, None),
    ("search_things", None, {}, None),
    ("list_user_flattrs", None, {"username": "ana"}, None),
    ("list_user_flattrs_not_found", None, {"username": "nobody"}, None),
    ("list_authenticated_user_flattrs", "ana", {}, None),
    ("list_authenticated_user_flattrs_unauthorized", None, {}, None),
    ("list_thing_flattrs", None, {"id": "post"}, None),
    ("list_subscriptions", "ana", {}, None),
    ("pause_subscription", "ana", {"id": "post"}, None),
    ("start_subscription", "ana", {"id": "post"}, None),
    ("delete_subscription", "ana", {"id": "post"}, None),
    ("delete_subscription_not_found", "ana", {"id": "post"}, None),
    ("list_user_activities", None, {"username": "ana"}, None),
    ("list_user_activities_not_found", None, {"username": "nobody"}, None),
    ("list_authenticated_user_activities", "ana", {}, None),
    ("create_thing", "bo", {}, {"url": "https://bo.example/developers"}),
    ("create_thing_invalid_url", "bo", {}, {"url": "not a url"}),
    ("update_thing", "bo", {"id": "created"}, None),
    ("delete_thing", "bo", {"id": "created"}, None),
    ("flattr_url", "ana", {}, None),
]


def test_the_story_replays_every_documented_example():
    assert {name for name, *_ in STORY} | {"token"} == set(EXAMPLES)


@pytest.fixture
def cast(engine, hub_config):
    """ana gives, bo owns two things on his claimed site, cy has no means; their tokens."""
    ana, bo = member(engine, hub_config, "ana"), member(engine, hub_config, "bo")
    cy = member(engine, hub_config, "cy", budget=None, funds=0)
    ids = {"post": thing(engine, bo, POST, title="API v2 beta out - what's changed?",
                         category="text", tags="api", description="Working hard"),
           "gem": thing(engine, bo, GEM, title="Ruby gem wrapping Flattrs API",
                        category="software", tags="gem,ruby")}
    tokens = {"ana": token(engine, ana), "ana_read": token(engine, ana, ("thing",)),
              "bo": token(engine, bo), "cy": token(engine, cy)}
    return ids, tokens


async def test_every_documented_example_answers_as_documented(hub_client, engine, cast):
    ids, tokens = cast
    for name, who, args, changes in STORY:
        example = EXAMPLES[name]
        method, path, params, body = request_of(example, args, ids, changes)
        headers = {} if who is None else bearer(tokens[who])
        if name.endswith("activities"):
            headers["Accept"] = "application/stream+json"
        reply = await hub_client.request(method, path, params=params, json=body,
                                         headers=headers, allow_redirects=False)
        text = await reply.text()
        assert reply.status == example["response"]["status"], (name, text)
        check_headers(name, example, reply.headers)
        documented = example["response"]["body"]
        if documented is None:
            assert text == "", name
            continue
        answer = json.loads(text)
        same_shape(documented, answer, name)
        if reply.status < 400:
            check_tables(name, answer)
        if name == "create_thing":
            ids["created"] = answer["id"]
    with engine.connect() as conn:
        assert verify(conn) == []


async def test_the_token_example(hub_client, engine, hub_config):
    ana = member(engine, hub_config, "ana")
    example = EXAMPLES["token"]
    with engine.begin() as conn:
        app = register_app(conn, ana, "player", "http://localhost/")
        code = issue_code(conn, app.app.id, ana, ("flattr", "thing"), "http://localhost/")
    basic = base64.b64encode(f"{app.app.client_id}:{app.client_secret}".encode()).decode()
    body = {**example["request"]["body"], "code": code, "redirect_uri": "http://localhost/"}
    reply = await hub_client.post(urlsplit(example["request"]["path"]).path, json=body,
                                  headers={"Authorization": f"Basic {basic}"})
    assert reply.status == example["response"]["status"]
    check_headers("token", example, reply.headers)
    same_shape(example["response"]["body"], await reply.json(), "token")


def request_of(example: dict[str, Any], args: dict[str, Any], ids: dict[str, int],
               changes: dict[str, Any] | None
               ) -> tuple[str, str, list[tuple[str, str]], dict[str, Any] | None]:
    """The documented request with the story's user, thing ids and URLs put in."""
    documented = example["request"]
    path = urlsplit(documented["path"]).path
    if "username" in args:
        path = path.replace(":username", args["username"])
    wanted = args.get("id")
    for one in (wanted if isinstance(wanted, list) else [wanted] if wanted else []):
        path = path.replace(":id", str(ids.get(one, one)), 1)
    query = documented["path"].partition("?")[2]
    params = [] if not query else (
        [("url", query.removeprefix("url=").replace(DOC_BLOG, POST).replace("=flattr", "=bo"))]
        if query.startswith("url=") and ":url" not in query else parse_qsl(query))
    params = [(key, args["url"] if value == ":url" else value) for key, value in params]
    body = documented.get("body")
    if body is not None and "url" in body:
        body = {**body, "url": body["url"].replace("blog.flattr.net%2F2011%2F10%2Fapi-v2-beta-"
                                                   "out-whats-changed", "bo.example%2Fauto")
                .replace("user_id=flattr", "user_id=bo")}
    if changes:
        body = {**(body or {}), **changes}
    return documented["method"], path, params, body


def check_headers(name: str, example: dict[str, Any], headers: Any) -> None:
    for header, value in example["response"]["headers"].items():
        assert header in headers, (name, header)
        if header == "Content-Type":
            assert media(headers[header]) == media(value), (name, headers[header])
        elif header == "Location":
            assert urlsplit(headers[header]).path.startswith("/rest/v2/things/"), name
        elif header.startswith("X-RateLimit-"):
            assert headers[header].isdigit(), (name, header)
        elif header in ("Cache-Control", "Pragma"):
            assert headers[header] == value, (name, header)
    if not any(h.startswith("X-RateLimit-") for h in example["response"]["headers"]):
        assert not any(h.startswith("X-RateLimit-") for h in headers), name  # not rate limited


def media(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def same_shape(documented: Any, ours: Any, where: str) -> None:
    """Every documented field is in our answer with the documented JSON type (a documented
    list: each of our items has the shape of the documented ones; categories and languages:
    each documented item is there as written)."""
    if isinstance(documented, dict):
        assert isinstance(ours, dict), where
        for key, value in documented.items():
            assert key in ours, f"{where}: {key} missing"
            if key in LITERAL and isinstance(value, str):
                assert ours[key] == value, f"{where}.{key}: {ours[key]!r}"
            if key == "hidden" and isinstance(value, int):  # the docs once wrote 0 for false
                assert isinstance(ours[key], bool), where
                continue
            same_shape(value, ours[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(ours, list), where
        if where in ("list_categories", "list_languages"):
            for item in documented:
                assert any(item.items() <= mine.items() for mine in ours), (where, item)
            return
        assert ours or not documented, f"{where}: empty"
        for item in ours if documented else []:
            same_shape(documented[0], item, f"{where}[]")
    else:
        assert ours is not None, f"{where}: null"
        assert type(ours) is type(documented), f"{where}: {ours!r} is not like {documented!r}"


def check_tables(name: str, answer: Any) -> None:
    """The field tables: users, things, flattrs, and the small ones inside."""
    fields = FIXTURE["fields"]
    if name.startswith("get_user") or name.startswith("get_authenticated_user"):
        fits(answer, fields["user"], name)
    elif name.startswith(("get_thing", "list_user_things", "list_authenticated_user_things")):
        for one in answer if isinstance(answer, list) else [answer]:
            fits(one, fields["thing"], name)
            fits(one["owner"], fields["mini_user"], name)
    elif "flattrs" in name and isinstance(answer, list):
        for flattr in answer:
            fits(flattr, fields["flattr"], name)
            fits(flattr["thing"], fields["mini_thing"], name)
            fits(flattr["owner"], fields["mini_user"], name)


def fits(obj: dict[str, Any], table: dict[str, str], where: str) -> None:
    for field, kind in table.items():
        if "(" in kind and field not in obj:
            continue  # a field for some scopes or for the owner only
        if field == "created_at" and "string" in kind:
            kind = "int"  # the flattr table says string but "Format is unixtime"; examples: int
        expected = TYPES[kind.split()[0]]
        assert isinstance(obj.get(field), expected), f"{where}: {field}={obj.get(field)!r}"
        if expected is int:
            assert not isinstance(obj[field], bool), f"{where}: {field}"
