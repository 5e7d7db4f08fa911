"""Journeys through the hub in headless Chromium, against `flattr-hub up` (hub, worker and
scheduler) with the fake GitHub OAuth provider and the fake Stripe: a newcomer from sign-up to
a month an operator settles from /ops/settlements, a creator claiming an identity whose pledges
become revenue, and the Flattr button on another site. Each step leaves a screenshot in
test-artifacts/browser/."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import expect

from ledger.accounts import user_id
from tests.browser_helpers import (
    PASSWORD,
    add_funds,
    github_linking,
    link_github,
    log_in,
    months_ago,
    seed_member,
    seed_operator,
    set_budget,
    settle_now,
    sign_up,
    star,
    stripe_checkout,
    wait_logged,
    wait_recorded,
)
from tests.ledger_checks import problems
from tests.rest_helpers import claim_site

pytest_plugins = ["tests.hub_fixtures", "tests.browser_fixtures"]
pytestmark = pytest.mark.browser

ANA_GITHUB, BO_GITHUB, CY_GITHUB, DANA_GITHUB = 1, 2, 3, 501


async def test_newcomer_from_sign_up_to_a_settled_month(
        start_hub, settlement_lock, oauth_fake, stripe_fake, engine, config, page, operator_page,
        shots):
    fake_oauth, oauth_url = oauth_fake
    # Last month is due from the first minute of this one, whatever the day the test runs.
    hub = start_hub(**github_linking(oauth_url), **stripe_checkout(stripe_fake.api_base),
                    settlement__day="1", settlement__time="00:00")
    seed_member(engine, config, "bo", BO_GITHUB, budget=200, funds=300)
    seed_operator(engine, "olga")

    await sign_up(page, hub, "dana", shots)
    fake_oauth.sign_in("github", str(DANA_GITHUB), "dana-gh")
    await link_github(page, shots)
    await set_budget(page, "5.00", shots)
    await add_funds(page, "20.00", shots)

    # Stars of bo's repositories: two dated last month (it has ended, so it can be settled
    # while the test runs) and one today.
    last_month, then = months_ago(1)
    for repo in (201, 202):
        star(hub, sender=DANA_GITHUB, repo=repo, owner=BO_GITHUB, at=then)
    star(hub, sender=DANA_GITHUB, repo=203, owner=BO_GITHUB, at=datetime.now(UTC))
    await wait_recorded(engine, 3)

    await page.get_by_role("link", name="Dashboard").click()
    await expect(page.locator("#count-counts")).to_have_text("1")
    await expect(page.locator("#this-month")).to_contain_text("repo203")
    past = page.locator("#history tr.month", has_text=last_month)
    await expect(past).to_contain_text("not settled yet")
    await expect(past.locator("td").nth(1)).to_have_text("2")
    await shots.take(page, "dashboard-likes-arrived")

    # An operator settles the ended month from the browser; the hub's worker runs the job. The
    # scheduler's catch-up at start found the lock held and left the month alone.
    await wait_logged(hub, "settlement_locked")
    settlement_lock.release()
    await log_in(operator_page, hub, "olga")
    run = await settle_now(operator_page, hub, last_month, shots)
    assert run[:6] == [last_month, "done", "1", "2", "5.00 EUR", "0.50 EUR"]

    await page.reload()
    await expect(past).not_to_contain_text("not settled yet")
    await expect(page.locator("#funds")).to_have_text("15.00 EUR")
    await shots.take(page, "dashboard-settled")
    await past.get_by_role("link", name=last_month).click()
    await expect(page.get_by_role("heading", name=f"Statement for {last_month}")).to_be_visible()
    await expect(page.get_by_text("Settled.")).to_be_visible()
    given = page.locator("table.given tr.flattr")
    await expect(given).to_have_count(2)
    for row in range(2):
        await expect(given.nth(row).locator("td").nth(3)).to_have_text("2.50 EUR")
    await shots.take(page, "statement")
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Download CSV").click()
    download = await downloading.value
    assert download.suggested_filename == f"flattr-dana-{last_month}.csv"
    rows = list(csv.DictReader(Path(await download.path()).read_text().splitlines()))
    assert sorted(row["content_id"] for row in rows if row["section"] == "given") == [
        "201", "202"]
    assert problems(engine) == []


async def test_creator_claims_identity_and_sees_pledges_become_revenue(
        start_hub, settlement_lock, oauth_fake, stripe_fake, engine, config, page, operator_page,
        shots):
    fake_oauth, oauth_url = oauth_fake
    hub = start_hub(**github_linking(oauth_url), **stripe_checkout(stripe_fake.api_base),
                    settlement__day="1", settlement__time="00:00")
    seed_member(engine, config, "ana", ANA_GITHUB, budget=500, funds=2000)
    seed_operator(engine, "olga")
    # ana stars two of cy's repositories two months ago; cy is not on the hub, so that month's
    # settlement (that month alone: `flattr-hub settle`) keeps them as pledges. Once cy has
    # claimed the identity and gives too, they count in last month's settlement, which an
    # operator starts from the browser.
    pledged_month, then = months_ago(2)
    for repo in (301, 302):
        star(hub, sender=ANA_GITHUB, repo=repo, owner=CY_GITHUB, at=then)
    await wait_recorded(engine, 2)
    assert f"settled {pledged_month}" in hub.cli("settle", pledged_month)

    await page.goto(f"{hub.url}/claim/github/{CY_GITHUB}")
    await expect(page.locator("#flattrs")).to_have_text("2")
    await expect(page.locator("#supporters")).to_have_text("1")
    await shots.take(page, "claim-page")
    await sign_up(page, hub, "cy", shots)
    fake_oauth.sign_in("github", str(CY_GITHUB), "cy-gh")
    await link_github(page, shots)

    await page.get_by_role("link", name="Dashboard").click()
    waiting = page.locator("#creator tr.waiting")
    await expect(waiting).to_contain_text("cy-gh")
    await expect(waiting.locator("td").nth(2)).to_have_text("2")
    await expect(page.locator("#creator")).to_contain_text("They count only in a month")
    await shots.take(page, "pledges-waiting")
    await set_budget(page, "2.00", shots)
    await add_funds(page, "5.00", shots)

    counted_month, _ = months_ago(1)
    await wait_logged(hub, "settlement_locked")
    settlement_lock.release()
    await log_in(operator_page, hub, "olga")
    run = await settle_now(operator_page, hub, counted_month, shots)
    assert run[:6] == [counted_month, "done", "1", "2", "5.00 EUR", "0.50 EUR"]

    await page.get_by_role("link", name="Dashboard").click()
    await expect(page.locator("#revenue")).to_have_text("4.50 EUR")
    await expect(page.locator("#creator")).to_contain_text("No pledges are waiting")
    await shots.take(page, "dashboard-revenue")
    await page.goto(f"{hub.url}/statements/{counted_month}")
    await expect(page.locator("table.received tr.share")).to_have_count(2)
    await expect(page.locator("#received-total")).to_have_text("4.50 EUR")
    await shots.take(page, "statement-received")
    assert problems(engine) == []


async def test_button_on_another_site_flattrs_through_login_and_counts(
        start_hub, engine, config, page, shots):
    hub = start_hub(catalog__counter_max_age="0")
    seed_member(engine, config, "bo", BO_GITHUB, budget=200, funds=300)
    seed_member(engine, config, "ana", ANA_GITHUB, budget=500, funds=2000)
    with engine.begin() as conn:  # bo proved bo.example is his: its pages pay him
        claim_site(conn, user_id(conn, "bo"), "https://bo.example/")

    await page.goto(f"{hub.url}/button/demo?uid=bo&url=https://bo.example/posts/1"
                    "&title=Bo%27s+first+post")
    button, counter = page.get_by_role("link", name="Flattr", exact=True), page.locator(
        ".flattr-hub-count")
    await expect(button).to_be_visible()
    await expect(counter).to_have_text("0")
    await shots.take(page, "button")

    async with page.context.expect_page() as opened:
        await button.click()
    flattr = await opened.value
    await expect(flattr.get_by_role("heading", name="Log in")).to_be_visible()
    await flattr.get_by_label("User name").fill("ana")
    await flattr.get_by_label("Password").fill(PASSWORD)
    await shots.take(flattr, "login-from-button")
    await flattr.get_by_role("button", name="Log in").click()
    await expect(flattr.get_by_text("Bo's first post")).to_be_visible()
    await shots.take(flattr, "confirm-flattr")
    await flattr.get_by_role("button", name="Flattr this").click()
    await expect(flattr.get_by_role("status")).to_have_text(
        "Flattred! It counts in this month's flattrs.")
    await shots.take(flattr, "flattred")
    await flattr.close()

    await page.reload()
    await expect(counter).to_have_text("1")
    await shots.take(page, "counter-went-up")

