"""Public pages: a member's profile and an identity's claim page, and their 404s."""

from __future__ import annotations

import re

from ledger import identities
from ledger.months import add_months
from tests.creator_scenario import build, join_as_owner_of_github_3
from tests.web_helpers import log_in, sign_up

pytest_plugins = ["tests.hub_fixtures"]
HTML = {"Accept": "text/html"}


async def test_profile_shows_claimed_identities_things_and_supporters(hub_client, engine,
                                                                      config):
    build(engine, config)
    reply = await hub_client.get("/u/bo")
    assert reply.status == 200
    page = await reply.text()
    assert re.search(r'<strong id="supporters">1</strong>\s*person has', page)
    assert re.findall(r'<li class="identity">([^<]*)<', page) == ["2 "]
    things = re.findall(r'<tr class="thing"><td>([^<]*)<span[^>]*>\(github\)</span></td>'
                        r'<td class="num">(\d+)</td>', page)
    assert sorted(things) == [("r1 ", "1"), ("r2 ", "1"), ("r4 ", "1"), ("r5 ", "1"),
                              ("r6 ", "1"), ("r8 ", "0")]
    ana = await (await hub_client.get("/u/ana")).text()
    assert "has not claimed any account or site yet" in ana and "Nothing flattred yet" in ana


async def test_unknown_members_and_identities_are_404_pages(hub_client, engine, config):
    build(engine, config)
    for path in ("/u/nobody", "/claim/github/999", "/claim/nowhere/3"):
        reply = await hub_client.get(path, headers=HTML)
        assert reply.status == 404, path
        assert reply.content_type == "text/html" and "<h1>404</h1>" in await reply.text()
    assert (await (await hub_client.get("/u/nobody")).json())["error"] == "not_found"


async def test_claim_page_shows_what_waits_and_how_to_claim_it(hub_client, engine, config):
    s = build(engine, config)
    page = await (await hub_client.get("/claim/github/3")).text()
    assert re.search(r'<strong id="supporters">1</strong>\s*person has', page)
    assert '<span id="flattrs">2</span>' in page
    assert '<strong id="estimate">3.01 EUR</strong>' in page
    lapse = add_months(s.m1, config.pledge_months + 1)
    assert f"the oldest lapse at the settlement of {lapse}" in page
    assert 'href="/login?next=/accounts/link/github"' in page
    await log_in(hub_client, "ana")
    signed_in = await (await hub_client.get("/claim/github/3")).text()
    assert 'href="/accounts/link/github"' in signed_in

    join_as_owner_of_github_3(engine, config)
    claimed = await (await hub_client.get("/claim/github/3")).text()
    assert 'Claimed by <a href="/u/cy">cy</a>' in claimed
    assert "opens a claim contest" in claimed and 'id="estimate"' not in claimed
    await log_in(hub_client, "cy")
    assert "Is it yours?" not in await (await hub_client.get("/claim/github/3")).text()


async def test_claim_page_of_a_web_site_offers_the_site_claim(hub_client, engine):
    with engine.begin() as conn:
        identities.identity_id(conn, "web", "example.org")
    page = await (await hub_client.get("/claim/web/example.org")).text()
    assert "Nothing is waiting for it at the moment." in page
    assert "Prove that you run example.org" in page
    assert 'href="/login?next=/claim/web/example.org"' in page
    await sign_up(hub_client, "dee")
    signed_in = await (await hub_client.get("/claim/web/example.org")).text()
    assert re.search(r'<form method="post" action="/sites">.*name="host" value="example.org"',
                     signed_in, re.S)
