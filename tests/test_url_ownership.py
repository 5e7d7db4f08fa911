"""Who owns a URL (issue 12, finding 9): a web page belongs to whoever claimed its site. A
member who registers someone else's page (REST API, auto-submit link) is its submitter only;
flattrs of it are pledges for the site's `web` identity until the site's owner claims it."""

from __future__ import annotations

from urllib.parse import urlencode

from catalog import things as catalog
from ledger.accounts import credit_funds, set_budget, user_id
from ledger.pledges import waiting_for_identity, waiting_for_member
from ledger.verify import verify
from members.sites import record_proof, request_claim
from tests.rest_helpers import bearer, member, token
from tests.test_things_web import form_fields
from tests.web_helpers import sign_up

pytest_plugins = ["tests.hub_fixtures"]

SITE = "dee-blog.example"
ARTICLE = f"https://{SITE}/2026/my-article"
OTHER = f"https://{SITE}/2026/another"


def button(url: str, user: str) -> str:
    """The auto-submit link of a Flattr button for `url`, naming `user`."""
    return "/submit/auto?" + urlencode({"user_id": user, "url": url, "title": "My article"})


async def flattr_by_button(client, path: str) -> str:
    page = await client.get(path)
    text = await page.text()
    assert page.status == 200, text
    assert "by bo" not in text and SITE in text  # the confirm page names the site, not bo
    done = await client.post("/submit/auto", data=form_fields(text))
    assert done.status == 200
    return await done.text()


async def test_a_registered_url_of_an_unclaimed_site_pays_the_site_never_the_submitter(
        hub_client, engine, hub_config):
    bo = member(engine, hub_config, "bo")
    dee = member(engine, hub_config, "dee")
    bo_api, dee_api = bearer(token(engine, bo)), bearer(token(engine, dee))
    squat = await hub_client.post("/rest/v2/things", headers=bo_api,
                                  json={"url": ARTICLE, "title": "bo was here"})
    assert squat.status == 201
    tid = (await squat.json())["id"]
    shown = await (await hub_client.get(f"/rest/v2/things/{tid}")).json()
    assert shown["owner"]["username"] is None and shown["submitter"]["username"] == "bo"

    await sign_up(hub_client, "cy")
    with engine.begin() as conn:
        cy = user_id(conn, "cy")
        set_budget(conn, cy, 500, hub_config.money)
        credit_funds(conn, cy, 2000, "test", "test:cy")
    assert "Pledged" in await flattr_by_button(hub_client, button(ARTICLE, "dee"))
    # bo's own auto-submit link of another of dee's pages: a pledge for dee's site too
    assert "Pledged" in await flattr_by_button(hub_client, button(OTHER, "bo"))
    with engine.connect() as conn:
        waiting = waiting_for_identity(conn, "web", SITE, hub_config.money)
        assert (waiting.supporters, waiting.flattrs, waiting.claimed_by) == (1, 2, None)
        assert waiting_for_member(conn, bo, hub_config.money).identities == []
        other = catalog.get_thing(conn, catalog.lookup_url(conn, OTHER))
        assert (other["owner"]["username"], other["submitter"]) == (None, "bo")
    # bo may not flattr what he submitted, and nobody else may change it once it is claimed
    with engine.begin() as conn:
        assert catalog.flattr(conn, bo, tid) == "flattr_owner"

    with engine.begin() as conn:  # dee proves her site (meta tag, .well-known or DNS)
        request_claim(conn, dee, SITE)
        record_proof(conn, dee, SITE)
    with engine.connect() as conn:  # cy's two flattrs of this month now count for dee
        for url in (ARTICLE, OTHER):
            owner = catalog.get_thing(conn, catalog.lookup_url(conn, url))["owner"]
            assert (owner["username"], owner["platform"]) == ("dee", "web")
        assert waiting_for_identity(conn, "web", SITE, hub_config.money).claimed_by == "dee"
    # dee registers her URL: it is hers (201, the same thing, her details)
    again = await hub_client.post("/rest/v2/things", headers=dee_api,
                                  json={"url": ARTICLE, "title": "My article"})
    assert again.status == 201 and (await again.json())["id"] == tid
    shown = await (await hub_client.get(f"/rest/v2/things/{tid}")).json()
    assert (shown["title"], shown["owner"]["username"]) == ("My article", "dee")
    vandal = await hub_client.patch(f"/rest/v2/things/{tid}", headers=bo_api,
                                    json={"title": "bo was here"})
    assert vandal.status == 403
    with engine.connect() as conn:
        assert verify(conn) == []
