"""Fuzz every route of the hub (issue 11): hypothesis generates requests for each route the
application's router holds — webhooks signed and unsigned, web forms from a signed-in
operator with the session's CSRF token, REST calls with a Bearer token — with hostile path
values, queries, headers and bodies. No answer may be a 5xx, and `ledger verify` must hold
afterwards. The requests are generated first (derandomized, so every run sends the same
ones) and then sent in order on the test's event loop."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.verify import verify
from tests.hostile_helpers import SIGNERS, Hostile

pytest_plugins = ["tests.hub_fixtures", "tests.hostile_fixtures"]

REQUESTS = 1500  # per backend
LEAVES_OUT = ("/logout", "/static/")  # logging out would end the fuzzing session
PARAM = re.compile(r"\{([a-z_]+)(?::[^}]*)?\}")

hostile_text = st.sampled_from([
    "", "1", "2", "0", "-1", "²", "٣", "9" * 19, "9" * 400, "1e9", " 1", "1_000", "\ud800",
    "\x00", "a\nb", "../../etc/passwd", "%ff", "x" * 3000, "javascript:alert(1)//",
    "https://127.0.0.1/a", "http://[::1]/", "2026-13", "2026-01", "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:30:00-01:00", "=HYPERLINK(\"http://x\")", "<script>", "github", "relay",
    "like", "created", "true", "null", "[]", "{}", "💸",
]) | st.text(max_size=40)
numbers = st.sampled_from([0, -1, 1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, -(10**30),
                           9223372036854775807]) | st.integers()
scalars = st.none() | st.booleans() | numbers | st.floats(allow_nan=False) | hostile_text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    hostile_text, inner, max_size=4), max_leaves=12)
FORM_FIELDS = ("name", "password", "email", "amount", "url", "title", "description", "tags",
               "category", "language", "hidden", "nonce", "host", "events", "budget", "next",
               "client_id", "client_secret", "redirect_uri", "response_type", "scope", "state",
               "code", "grant_type", "queue", "job_id", "iban", "bic", "holder_name",
               "enabled", "platforms", "award", "decision", "_method", "code_verifier")
WEBHOOK_PAYLOADS = {
    "github": {"action": "created", "starred_at": "2026-10-03T14:12:09Z",
               "repository": {"id": 5, "full_name": "bo/repo", "owner": {"id": 2},
                              "html_url": "https://github.com/bo/repo"}, "sender": {"id": 1}},
    "relay": {"type": "like", "platform": "soundcloud", "actor_id": "10", "content_id": "t",
              "owner_id": "20", "occurred_at": "2026-11-20T10:00:00Z", "url": "https://a.b/"},
    "discord": {"type": 2, "id": "1211122334455667788", "user": {"id": "5"},
                "data": {"type": 3, "target_id": "7", "resolved": {"messages": {"7": {
                    "id": "7", "author": {"id": "8"}, "channel_id": "9"}}}}},
    "x": {"for_user_id": "1", "favorite_events": [{"id": "f1", "timestamp_ms": "1700000000000",
          "favorited_status": {"id_str": "3", "user": {"id_str": "4"}}, "user": {"id_str": "1"}}]},
    "stripe": {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {
        "object": "checkout.session", "id": "cs_1", "payment_status": "paid",
        "amount_total": 500, "currency": "eur", "metadata": {"user": "olga"}}}},
}


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # `/things/{id}`
    params: tuple[str, ...]


def routes_of(app: Any) -> list[Route]:
    """Every (method, path) the router serves, but HEAD (aiohttp adds one per GET)."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        template = info.get("path") or info.get("formatter")
        if not template or route.method == "HEAD" or template.startswith(LEAVES_OUT):
            continue
        template = PARAM.sub(lambda m: "{" + m.group(1) + "}", template)
        found.append(Route(route.method, template, tuple(PARAM.findall(template))))
    return found


@st.composite
def mutated(draw: Any, payload: Any) -> Any:
    """`payload` with one value somewhere inside it replaced by a hostile one."""
    if isinstance(payload, dict) and payload and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(payload)))
        return {**payload, key: draw(mutated(payload[key]))}
    if isinstance(payload, list) and payload and draw(st.booleans()):
        return [draw(mutated(item)) for item in payload]
    return draw(json_values)


@st.composite
def requests(draw: Any, routes: list[Route]) -> dict[str, Any]:
    route = draw(st.sampled_from(routes))
    values = {name: draw(st.sampled_from(["1", "2"]) | hostile_text) for name in route.params}
    path = route.template.format(**{k: quote(v.encode("utf-8", "surrogatepass"), safe="")
                                    for k, v in values.items()})
    query = draw(st.dictionaries(st.sampled_from(["page", "count", "full", "q", "next", "month",
                                                  "crc_token", "url", "done", "tags"]),
                                 hostile_text, max_size=3))
    if query:
        path += "?" + urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in query.items()})
    headers: dict[str, str] = {}
    body: bytes | None = None
    kind = "none"
    if route.method in ("POST", "PUT", "PATCH", "DELETE") or route.method == "*":
        if route.template.startswith("/webhooks/"):
            platform = route.template.rsplit("/", 1)[1]
            platform = values.get("platform", platform)
            base = WEBHOOK_PAYLOADS.get(platform, WEBHOOK_PAYLOADS["relay"])
            payload = draw(mutated(base) | json_values | st.just(base))
            body = _json_bytes(payload)
            if draw(st.integers(0, 3)) and platform in SIGNERS:
                headers.update(SIGNERS[platform](body))
            kind = "webhook"
        elif draw(st.integers(0, 4)) == 0:
            body = draw(st.sampled_from([b"garbage", b"[" * 200, b"\xff\xfe", b"a=%ff\xff"]))
            headers["Content-Type"] = draw(st.sampled_from([
                "multipart/form-data; boundary=x", "application/json",
                "application/x-www-form-urlencoded", "text/plain"]))
            kind = "raw"
        elif route.template.startswith("/rest/") or draw(st.integers(0, 5)) == 0:
            body = _json_bytes(draw(st.dictionaries(
                st.sampled_from(FORM_FIELDS) | hostile_text, json_values, max_size=5)))
            headers["Content-Type"] = "application/json"
            kind = "json"
        else:
            kind = "form"
            headers["form"] = json.dumps(draw(st.dictionaries(
                st.sampled_from(FORM_FIELDS), hostile_text, max_size=6)))
    return {"method": "PUT" if route.method == "*" else route.method, "path": path,
            "headers": headers, "body": body, "kind": kind,
            "bearer": route.template.startswith("/rest/") and draw(st.integers(0, 4)) > 0,
            "html": draw(st.booleans())}


def _json_bytes(value: Any) -> bytes:
    try:
        return json.dumps(value).encode("utf-8", "surrogatepass")
    except ValueError:  # an integer of more than 4,300 digits can not be written
        return b"{}"


def generate(routes: list[Route], count: int) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(requests(routes))
    def collect(request: dict[str, Any]) -> None:
        made.append(request)

    collect()
    return made


async def test_no_route_answers_5xx_to_generated_requests(hostile: Hostile, engine, capsys):
    routes = routes_of(hostile.client.app)
    assert len(routes) > 80 and any(r.template == "/webhooks/discord" for r in routes)
    cases = generate(routes, REQUESTS)
    statuses: Counter[int] = Counter()
    failures = []
    for case in cases:
        headers = dict(case["headers"])
        data: Any = case["body"]
        if case["kind"] == "form":
            fields = {**json.loads(headers.pop("form")), "csrf_token": hostile.csrf}
            data = urlencode({k: v.encode("utf-8", "surrogatepass")
                              for k, v in fields.items()}).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif case["method"] != "GET" and case["kind"] != "webhook":
            headers["X-CSRF-Token"] = hostile.csrf
        if case["bearer"]:
            headers["Authorization"] = f"Bearer {hostile.rest_token}"
        if case["html"]:
            headers["Accept"] = "text/html"
        reply = await hostile.client.request(case["method"], case["path"], data=data,
                                             headers=headers, allow_redirects=False)
        statuses[reply.status] += 1
        if reply.status >= 500:
            failures.append((case["method"], case["path"][:120], reply.status,
                             (await reply.text())[:200]))
        reply.release()
    with engine.connect() as conn:
        problems = verify(conn)
    with capsys.disabled():
        print(f"\nfuzz: {len(cases)} requests over {len(routes)} routes, "
              f"{sum(n for s, n in statuses.items() if s >= 500)} answered 5xx; "
              f"statuses {dict(sorted(statuses.items()))}")
    assert failures == []
    assert problems == []
