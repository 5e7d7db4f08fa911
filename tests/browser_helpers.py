"""What the browser tests share besides fixtures: the running hub's handle (its URL, its CLI on
the same configuration, webhook posting), numbered screenshots, Chromium's launch settings, and
browser steps used by several journeys."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import Page, expect
from sqlalchemy import Engine, func, select

from base.config import Settings
from hub.simulate import github_star
from ledger import accounts, identities
from ledger.months import add_months, month_of, month_start
from ledger.schema import flattrs
from members.logins import set_operator
from members.logins import sign_up as sign_up_member
from tests.fakes import oauth_provider, stripe_api
from tests.hub_helpers import GITHUB_SECRET

# FLATTR_TEST_CHROMIUM names another Chromium binary (a test points it nowhere to see the skip).
CHROMIUM = Path(os.environ.get("FLATTR_TEST_CHROMIUM", "/usr/bin/chromium"))
NO_CHROMIUM = (f"Chromium is not installed at {CHROMIUM}: install it with "
               "`apt-get install chromium` (.ci/run does)")
# Headless as root, and nothing reaching out to Google's services on a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
WAIT_MS = 10_000  # the longest any single browser step may wait
CLI_SECONDS = 60
PASSWORD = "correct horse battery"


@dataclass
class LiveHub:
    """A running `flattr-hub up`: its URL, the environment it was configured with, and the
    folder it runs in (its data_dir) and its log."""

    url: str
    env: dict[str, str]
    workdir: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def cli(self, *args: str) -> str:
        """Run `flattr-hub ARGS` on the hub's configuration; fails the test on a non-zero exit.
        Returns what it printed."""
        done = subprocess.run([sys.executable, "-m", "flattr_hub.cli", *args], cwd=self.workdir,
                              env=self.env, capture_output=True, text=True, timeout=CLI_SECONDS)
        assert done.returncode == 0, f"flattr-hub {' '.join(args)}: {done.stderr.strip()}"
        return done.stdout

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST to the hub; returns the HTTP status."""
        request = urllib.request.Request(self.url + path, data=body, headers=dict(headers))
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


@dataclass
class Shots:
    """Numbered screenshots of each step, saved as test artifacts."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    async def take(self, page: Page, step: str) -> None:
        path = self.folder / f"{len(self.taken) + 1:02d}-{step}.png"
        await page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        print(f"screenshot: {path}")


async def sign_up(page: Page, hub: LiveHub, name: str, shots: Shots) -> None:
    """Sign up from the front page; ends signed in."""
    await page.goto(hub.url + "/")
    await page.get_by_role("link", name="Sign up").first.click()
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await shots.take(page, "signup-form")
    await page.get_by_role("button", name="Create my account").click()
    await expect(page.get_by_role("button", name=f"Log out ({name})")).to_be_visible()
    await shots.take(page, "signed-up")


def star(hub: LiveHub, *, sender: int, repo: int, owner: int, at: datetime) -> None:
    """GitHub user `sender` stars repository `repo` of user `owner` at `at`: a signed webhook."""
    body, headers = github_star(GITHUB_SECRET, sender=sender, repo=repo, owner=owner,
                                starred_at=at)
    assert hub.post("/webhooks/github", body, headers) == 202


def months_ago(count: int) -> tuple[str, datetime]:
    """The month `count` months before this one, and a moment in its middle."""
    month = add_months(month_of(datetime.now(UTC)), -count)
    return month, month_start(month).replace(day=15, hour=12, tzinfo=UTC)


def seed_member(engine: Engine, config: Settings, name: str, github: int, *,
               budget: int, funds: int) -> None:
    """A user who is on the hub already: budget, funds, and a claimed GitHub identity."""
    with engine.begin() as conn:
        uid = sign_up_member(conn, name, PASSWORD)
        accounts.set_budget(conn, uid, budget, config.money)
        accounts.credit_funds(conn, uid, funds, "test", f"test:{name}")
        identities.link(conn, uid, "github", str(github), claim=True)


def seed_operator(engine: Engine, name: str) -> None:
    """An operator of the hub (as `flattr-hub user operator` makes one), with PASSWORD."""
    with engine.begin() as conn:
        set_operator(conn, sign_up_member(conn, name, PASSWORD), True)


async def log_in(page: Page, hub: LiveHub, name: str) -> None:
    """Log in with PASSWORD from the login page; ends signed in."""
    await page.goto(hub.url + "/login")
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in", exact=True).click()
    await expect(page.get_by_role("button", name=f"Log out ({name})")).to_be_visible()


async def settle_now(page: Page, hub: LiveHub, month: str, shots: Shots) -> list[str]:
    """On /ops/settlements (the page signed in as an operator), see that `month` is due and no
    settlement job waits, press "Settle ended months now", then reload until the hub's worker
    has settled it. Returns the cells of its row in the table of runs."""
    await page.goto(hub.url + "/ops/settlements")
    await expect(page.locator("#months-due")).to_contain_text(month)
    await expect(page.locator("#settlement-job")).to_have_text(
        "No settlement job is waiting or running.")
    await shots.take(page, "ops-month-due")
    await page.get_by_role("button", name="Settle ended months now").click()
    await expect(page.get_by_role("status")).to_contain_text("A settlement job was queued")
    await shots.take(page, "ops-settlement-queued")
    run = page.locator("#settlement-runs tr", has_text=month).locator("td")
    deadline = time.monotonic() + WAIT_MS / 1000
    while not (await run.count() and await run.nth(1).inner_text() == "done"):
        assert time.monotonic() < deadline, f"{month} was not settled in {WAIT_MS} ms"
        await asyncio.sleep(0.2)
        await page.reload()
    await expect(page.locator("#months-due")).not_to_contain_text(month)
    await shots.take(page, "ops-settled")
    return [cell.strip() for cell in await run.all_inner_texts()]


async def wait_logged(hub: LiveHub, event: str) -> None:
    """Wait until the hub (its web service, worker or scheduler) has logged `event`."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while f'"event": "{event}"' not in hub.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"the hub did not log {event}"
        await asyncio.sleep(0.1)


async def wait_recorded(engine: Engine, count: int) -> None:
    """Wait until the worker has recorded `count` flattrs (the webhooks were accepted)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        with engine.connect() as conn:
            recorded = conn.execute(select(func.count()).select_from(flattrs)).scalar_one()
        if recorded >= count:
            return
        assert time.monotonic() < deadline, f"{recorded} of {count} flattrs recorded"
        await asyncio.sleep(0.1)


def github_linking(url: str) -> dict[str, str]:
    """Settings (for `start_hub`) that link GitHub accounts through the fake provider at `url`."""
    return {"connectors__github__client_id": oauth_provider.CLIENT_ID,
            "connectors__github__client_secret": oauth_provider.CLIENT_SECRET,
            "connectors__github__oauth_authorize_url": f"{url}/github/authorize",
            "connectors__github__oauth_token_url": f"{url}/github/token",
            "connectors__github__profile_url": f"{url}/github/me"}


def stripe_checkout(url: str) -> dict[str, str]:
    """Settings (for `start_hub`) that add funds through the fake Stripe at `url`."""
    return {"payments__stripe__secret_key": stripe_api.SECRET_KEY,
            "payments__stripe__webhook_secret": stripe_api.WEBHOOK_SECRET,
            "payments__stripe__api_base": url}


async def link_github(page: Page, shots: Shots) -> None:
    """Link the GitHub account signed in at the fake provider, from the accounts page."""
    await page.get_by_role("link", name="Linked accounts").click()
    await page.get_by_role("button", name="Link GitHub").click()
    await expect(page.get_by_role("status")).to_contain_text("Your GitHub account is linked")
    await expect(page.get_by_text("claimed: what it owns pays you")).to_be_visible()
    await shots.take(page, "github-linked")


async def set_budget(page: Page, amount: str, shots: Shots) -> None:
    """Set the monthly budget on the money page (`amount` as the page shows it, `5.00`)."""
    await page.get_by_role("link", name="Money").click()
    await page.locator("#budget-form").get_by_label("Amount per month").fill(amount)
    await page.get_by_role("button", name="Save budget").click()
    await expect(page.get_by_role("status")).to_have_text("Your monthly budget is saved.")
    await expect(page.locator("#budget")).to_have_text(f"{amount} EUR")
    await shots.take(page, "budget-set")


async def add_funds(page: Page, amount: str, shots: Shots) -> None:
    """Add funds through the fake Stripe's checkout page; ends on the money page."""
    await page.get_by_role("link", name="Money").click()
    await page.locator("#funds-form").get_by_label("Amount").fill(amount)
    await page.get_by_role("button", name="Pay with Stripe").click()
    await expect(page.get_by_role("heading", name="Fake Stripe Checkout")).to_be_visible()
    await expect(page.locator("#amount")).to_have_text(f"{amount} EUR")
    await shots.take(page, "stripe-checkout")
    await page.get_by_role("button", name="Pay").click()
    await expect(page.get_by_role("status")).to_contain_text("Thank you!")
    await expect(page.locator("#funds")).to_have_text(f"{amount} EUR")
    await shots.take(page, "funded")
