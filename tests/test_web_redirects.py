"""Where the login page sends the browser afterwards: `next` only when, after refusing control
characters, backslashes and anything with a scheme or host, it is a path on this site."""

from __future__ import annotations

import pytest

from hub.web.session import local_path
from tests.web_helpers import PASSWORD, post_form, sign_up

pytest_plugins = ["tests.hub_fixtures"]

FOREIGN = ("https://evil.example/", "//evil.example/x", "/\\evil.example", "\\\\evil.example",
           "/\t/evil.example/phish", "/\n/evil.example/phish", "/\r\n/evil.example/phish",
           "\t//evil.example", " //evil.example", "/\x00/evil.example", "/\x0b/evil.example",
           "/\x7f/evil.example", "javascript:alert(1)", "JaVaScRiPt:alert(1)",
           "http:/evil.example", "/\u3000/evil.example", "///evil.example", "/\\/evil.example",
           "evil.example", "", "/" + "a" * 3000)
LOCAL = ("/accounts", "/things?page=2&sort=top", "/%2F/evil.example", "/u/ana#flattrs")


@pytest.mark.parametrize("target", FOREIGN)
def test_foreign_or_disguised_targets_fall_back(target):
    assert local_path(target) == "/dashboard"


@pytest.mark.parametrize("target", LOCAL)
def test_paths_on_this_site_are_kept(target):
    assert local_path(target) == target


async def test_the_login_redirect_never_leaves_the_site(hub_client):
    await sign_up(hub_client, "ana")
    for target in ("/\t/evil.example/phish", "/\n/evil.example/phish", "/\\evil.example"):
        hub_client.session.cookie_jar.clear()
        reply = await post_form(hub_client, "/login", {"name": "ana", "password": PASSWORD,
                                                       "next": target})
        assert reply.status == 303 and reply.headers["Location"] == "/dashboard", repr(target)
    hub_client.session.cookie_jar.clear()
    page = await hub_client.get("/login", params={"next": "/\t/evil.example/phish"})
    assert 'name="next" value="/dashboard"' in await page.text()
