"""Discovery: a page's rel="payment" link (HTML head, RSS/Atom feed, HTTP Link header) names
the hub user who owns it; fetched from a local fake web site."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from base.config import with_overrides
from catalog import discovery
from catalog.discovery import payment_links
from catalog.errors import FetchFailed, InvalidThing
from flattr_hub.cli import main
from tests.fakes.dns_server import FakeDNS
from tests.fakes.server import serve
from tests.fakes.web_pages import site

SUBMIT = "https://flattr.com/submit/auto"
BO_LINK = SUBMIT + "?" + "&amp;".join([
    "user_id=bo", "url=https%3A%2F%2Fbo.example%2Fpost", "title=Bo%27s+post", "category=text",
    "language=en_GB", "tags=a,b"])
EPISODE_LINK = f"{SUBMIT}?url=https%3A%2F%2Fcy.example%2Fep1&amp;uid=cy"
ITEM_LINK = f"{SUBMIT}?url=https%3A%2F%2Fdee.example%2F1&amp;uid=dee"

HTML = f"""<!doctype html><html><head><title>Post</title>
<link rel="stylesheet" href="/s.css">
<link rel="payment" href="{BO_LINK}">
</head><body><p>Hello</p></body></html>"""

ATOM = f"""<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE feed [<!ENTITY boom "boom">]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Cy's feed</title>
  <link rel="payment" href="{SUBMIT}?uid=cy&amp;category=audio" type="text/html"/>
  <entry><title>Episode 1</title><link href="https://cy.example/ep1"/>
    <link rel="payment" href="{EPISODE_LINK}" type="text/html"/>
  </entry>
</feed>"""

RSS = f"""<?xml version="1.0"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>Dee</title>
  <item><title>One</title>
    <atom:link rel="payment" href="{ITEM_LINK}" type="text/html"/>
  </item>
</channel></rss>"""


def discover(url: str, config: dict) -> dict | None:
    return asyncio.run(discovery.discover(url, config))


@pytest.fixture
def web_site():
    pages = {
        "/post": ("text/html", HTML),
        "/feed.atom": ("application/atom+xml", ATOM),
        "/rss": ("application/rss+xml", RSS),
        "/plain": ("text/html", "<html><head><title>none</title></head></html>"),
        "/header": ("text/plain", "hi", {"Link": f'<{SUBMIT}?user_id=ana>; rel="payment"'}),
        "/other": ("text/html", '<link rel="payment" href="https://pay.example/tip?u=1">'
                                '<link rel="alternate payment" href="/submit/auto?uid=bo">'),
    }
    redirects = {"/old": "/post", "/loop1": "/loop2", "/loop2": "/loop3", "/loop3": "/loop4",
                 "/loop4": "/post"}
    with serve(site(pages, redirects, slow={"/slow": 2.0})) as base:
        yield base


@pytest.fixture
def settings(config):
    return with_overrides(config, {"catalog.discovery_allow_private": True,
                                   "catalog.discovery_timeout_seconds": 1})


def test_html_head_payment_link(web_site, settings):
    found = discover(web_site + "/post", settings)
    assert (found["user_id"], found["url"]) == ("bo", "https://bo.example/post")
    assert (found["title"], found["category"], found["language"], found["tags"]) == (
        "Bo's post", "text", "en_GB", ["a", "b"])
    assert found["page_url"] == web_site + "/post" and found["payment_url"].startswith(SUBMIT)


def test_atom_and_rss_feeds(web_site, settings):
    feed = discover(web_site + "/feed.atom", settings)
    assert (feed["user_id"], feed["category"]) == ("cy", "audio")
    assert feed["url"] == web_site + "/feed.atom"  # a feed-level link without url: the feed
    rss = discover(web_site + "/rss", settings)
    assert (rss["user_id"], rss["url"]) == ("dee", "https://dee.example/1")
    assert len(payment_links(ATOM, "https://cy.example/")) == 2


def test_link_header_relative_links_and_redirects(web_site, settings):
    assert discover(web_site + "/header", settings)["user_id"] == "ana"
    other = discover(web_site + "/other", settings)
    assert other["user_id"] == "bo" and other["payment_url"].startswith(web_site)
    assert discover(web_site + "/old", settings)["page_url"] == web_site + "/post"
    assert discover(web_site + "/plain", settings) is None


def test_refusals(web_site, settings):
    with pytest.raises(FetchFailed, match="too many redirects"):
        discover(web_site + "/loop1", settings)
    with pytest.raises(FetchFailed, match="HTTP 404"):
        discover(web_site + "/missing", settings)
    with pytest.raises(FetchFailed, match="in time"):
        discover(web_site + "/slow", settings)
    for bad in ("ftp://example.org/", "not a url", ""):
        with pytest.raises(InvalidThing):
            discover(bad, settings)
    settings = with_overrides(settings, {"catalog.discovery_allow_private": False})
    with pytest.raises(InvalidThing, match="private address"):
        discover(web_site + "/post", settings)


def test_one_deadline_covers_every_redirect(settings):
    """Each hop answers within the timeout, but the chain does not: the fetch gives up
    before reaching the page (the timeout is for the whole fetch, not per request)."""
    hops = {f"/r{n}": f"/r{n + 1}" for n in range(4)} | {"/r4": "/post"}
    seen = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(request.path)
        return await handler(request)

    app = site({"/post": ("text/html", HTML)}, hops, slow=dict.fromkeys(hops, 0.4))
    app.middlewares.append(record)
    settings = with_overrides(settings, {"catalog.discovery_max_redirects": 5})
    with serve(app) as base, pytest.raises(FetchFailed, match="in time"):
        discover(base + "/r0", settings)
    assert "/post" not in seen and len(seen) <= 3


def test_names_resolving_to_private_addresses_are_refused(web_site, settings):
    settings = with_overrides(settings, {"catalog.discovery_allow_private": False})
    port = web_site.rsplit(":", 1)[1]
    with pytest.raises(InvalidThing, match="localhost resolves to a private address"):
        discover(f"http://localhost:{port}/post", settings)
    with pytest.raises(FetchFailed, match=r"cannot resolve nowhere\.invalid"):
        discover("http://nowhere.invalid/post", settings)


def test_fetches_go_to_the_checked_address_and_every_redirect_is_checked(settings):
    """The connection goes to the address the check found (pages.invalid's, let through by
    `network.allow_addresses`), and a redirect to a private host is refused: by name
    (inner.invalid is 127.0.0.2) or as an IPv6 spelling of loopback."""
    settings = with_overrides(settings, {"catalog.discovery_allow_private": False})
    records = {("pages.invalid", "A"): ["127.0.0.1"], ("inner.invalid", "A"): ["127.0.0.2"]}
    with FakeDNS(records) as dns, serve(site({"/post": ("text/html", HTML)},
                                             {"/old": "/post"})) as base:
        settings = with_overrides(settings, {"network": dict(
            nameservers=["127.0.0.1"], dns_port=dns.port, allow_addresses=["127.0.0.1"])})
        port = base.rsplit(":", 1)[1]
        app = site({}, {"/inner": f"http://inner.invalid:{port}/post",
                        "/v6": f"http://[::7f00:1]:{port}/post"})
        with serve(app) as other:
            found = discover(f"http://pages.invalid:{port}/old", settings)
            assert found["user_id"] == "bo"
            assert found["page_url"] == f"http://pages.invalid:{port}/post"
            assert {name for name, _ in dns.questions} == {"pages.invalid"}
            away = f"http://pages.invalid:{other.rsplit(':', 1)[1]}"
            with pytest.raises(InvalidThing, match=r"inner\.invalid resolves to a private"):
                discover(away + "/inner", settings)
            with pytest.raises(InvalidThing, match="resolves to a private address"):
                discover(away + "/v6", settings)


def test_cli_discover(web_site, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLATTR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("FLATTR_CATALOG__DISCOVERY_ALLOW_PRIVATE", "true")
    assert main(["things", "discover", web_site + "/rss"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["user_id"] == "dee" and printed["url"] == "https://dee.example/1"
    assert main(["things", "discover", web_site + "/plain"]) == 0
    assert json.loads(capsys.readouterr().out)["payment_url"] is None
    assert main(["things", "discover", "gopher://x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "http" in err
