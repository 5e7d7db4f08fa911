"""Stored text that bites later (issue 11, finding 10, links): things keep only http(s) URLs —
events, polled items and the button demo refuse or drop anything else — and a URL stored
before that rule (`javascript:…`) is shown as text, never as a link."""

from __future__ import annotations

from datetime import datetime

from connectors.poll_diff import valid_items
from connectors.poll_types import Account, Item, Snapshot
from ledger import identities
from ledger.schema import things
from ledger.sql import utcnow
from ledger.validation import is_web_url

pytest_plugins = ["tests.hub_fixtures"]

EVIL = "javascript:alert(document.domain)//"


def test_only_http_and_https_urls_pass():
    for url in ("https://example.org/a?b#c", "http://127.0.0.1:8080/"):
        assert is_web_url(url)
    for url in (EVIL, "JAVASCRIPT:alert(1)", "data:text/html,x", "vbscript:x", "//evil/",
                "https://", "https://exa mple/", "https://a.b/\x00", "ftp://a.b/",
                "https://a.b:99999/", "https://" + "a" * 3000, None, 5):
        assert not is_web_url(url), url


def test_a_polled_item_with_a_bad_link_is_skipped():
    account = Account(1, "soundcloud", "", "10", "10", "token", None, None, 0, True, 0)
    items = [Item("t-1", "20", "https://soundcloud.com/a/t-1", "fine"),
             Item("t-2", "20", EVIL, "evil"), Item("t-3", "20", None, "bad \ud800 title")]
    kept = valid_items(account, Snapshot(items, True, 1), datetime(2026, 11, 20))
    assert [item.content_id for item in kept] == ["t-1"]


async def test_a_stored_javascript_url_is_text_not_a_link(hub_client, engine):
    with engine.begin() as conn:
        owner = identities.identity_id(conn, "github", "2")
        thing_id = conn.execute(things.insert().values(
            platform="github", content_id="old", owner_identity_id=owner, url=EVIL,
            title="an old thing", created_at=utcnow()).returning(things.c.id)).scalar_one()
    page = await (await hub_client.get(f"/things/{thing_id}")).text()
    assert "javascript:alert(document.domain)//" in page
    assert 'href="javascript' not in page.lower()
    demo = await (await hub_client.get("/button/demo", params={"url": EVIL})).text()
    assert "javascript:" not in demo.lower()
