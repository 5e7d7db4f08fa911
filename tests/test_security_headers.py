"""Security headers on every answer (hub.security_headers): a strict Content-Security-Policy,
no framing except the Flattr button's routes, nosniff, a Referrer-Policy; and the pages hold
no inline script or style the policy would block (the browser journeys also fail on any CSP
violation Chromium reports)."""

from __future__ import annotations

import re

import pytest

from tests.web_helpers import sign_up

pytest_plugins = ["tests.hub_fixtures"]

INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=", re.I)


def assert_strict(headers, framing: bool = False) -> None:
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "object-src 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    if framing:
        assert "frame-ancestors" not in policy and "X-Frame-Options" not in headers
    else:
        assert "frame-ancestors 'none'" in policy and headers["X-Frame-Options"] == "DENY"


async def test_pages_api_errors_and_static_files_carry_the_headers(hub_client):
    for path in ("/", "/login", "/signup", "/things", "/rest/v2/things/1", "/no/such/page",
                 "/static/site.css", "/healthz"):
        reply = await hub_client.get(path)
        assert_strict(reply.headers)


async def test_the_buttons_routes_may_be_embedded(hub_client):
    for path in ("/js/button.js", "/button/count?url=https://bo.example/post",
                 "/button/demo?uid=bo"):
        reply = await hub_client.get(path)
        assert reply.status == 200, path
        assert_strict(reply.headers, framing=True)


async def test_operator_dashboard_is_not_framed_either(hub_client):
    reply = await hub_client.get("/ops/rq", allow_redirects=False)
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["X-Frame-Options"] == "DENY"


# https links (the test client speaks http, so its cookies are not marked Secure)
@pytest.mark.settings({"hub.base_url": "https://hub.example.org", "web.secure_cookies": "false"})
async def test_pages_hold_no_inline_script_or_style(hub_client):
    pages = ["/", "/login", "/signup", "/things", "/things/top", "/button/demo?uid=bo"]
    for path in pages:
        assert not INLINE.search(await (await hub_client.get(path)).text()), path
    await sign_up(hub_client, "ana")
    for path in ("/dashboard", "/money", "/accounts", "/sites", "/settings/webhooks",
                 "/settings/notifications"):
        reply = await hub_client.get(path)
        assert reply.status == 200, path
        assert not INLINE.search(await reply.text()), path
