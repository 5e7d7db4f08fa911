"""Fixtures for the browser tests: the real hub as `flattr-hub up` runs it (hub, worker and
scheduler as subprocesses of the CLI, on the test's database and Redis, on a free port), and
pages of headless Debian Chromium driven by Playwright (`page`, and `operator_page` in a
browser context of its own, for a second person), with screenshots kept as test artifacts in
`test-artifacts/browser/<test>/`. Load with
`pytest_plugins = ["tests.hub_fixtures", "tests.browser_fixtures"]`.

Scheduled settlement stands aside while a test runs: `settlement_lock` holds the settlement
lock (as a run in progress would), so the scheduler's catch-up at start does not close last
month before the test has recorded its flattrs there. The test then settles with
`flattr-hub settle`, or releases the lock and has an operator press "Settle ended months now"."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright
from redis import Redis
from redis.lock import Lock

from pipeline.settling import SETTLE_LOCK
from tests.browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NO_CHROMIUM,
    WAIT_MS,
    LiveHub,
    Shots,
)
from tests.fakes.oauth_provider import FakeOAuthProvider
from tests.fakes.server import serve
from tests.fakes.stripe_api import FakeStripe, create_app
from tests.hub_helpers import GITHUB_SECRET, RELAY_SECRET

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
START_SECONDS = 30
STOP_SECONDS = 30


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Chromium the browser tests are skipped (and counted in one line by
    `tests.conftest.pytest_terminal_summary`)."""
    if CHROMIUM.exists():
        return
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=NO_CHROMIUM))


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """This test's artifact folder, emptied."""
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def shots(artifacts: Path) -> Shots:
    return Shots(artifacts)


@pytest.fixture
def live_hub_url() -> str:
    """Where the hub will listen: a free port on 127.0.0.1, known before it starts so that
    the fakes can be told where to call back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def settlement_lock(redis: Redis) -> Iterator[Lock]:
    """The settlement lock, held until the test releases it (or ends)."""
    lock = redis.lock(SETTLE_LOCK, timeout=600)
    assert lock.acquire(blocking=False)
    try:
        yield lock
    finally:
        if lock.owned():
            lock.release()


@pytest.fixture
def start_hub(live_hub_url: str, db_url: str, redis_url: str, settlement_lock: Lock,
              tmp_path: Path, artifacts: Path) -> Iterator[Callable[..., LiveHub]]:
    """`start_hub(**settings)` runs `flattr-hub up` at `live_hub_url` with the connector secrets of
    tests.hub_helpers and `settings` as FLATTR_* overrides (`catalog__counter_max_age="0"`,
    the fake providers' URLs), waits until it answers, and stops it (Ctrl-C) after the test."""
    started: list[LiveHub] = []
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLATTR_")}
    env.update(
        PYTHONUNBUFFERED="1", FLATTR_DATABASE_URL=db_url, FLATTR_REDIS_URL=redis_url,
        FLATTR_DATA_DIR=str(tmp_path / "var"), FLATTR_HUB__BASE_URL=live_hub_url,
        FLATTR_CONNECTORS__GITHUB__WEBHOOK_SECRET=GITHUB_SECRET,
        FLATTR_CONNECTORS__RELAY__SECRET=RELAY_SECRET)

    def start(**settings: str) -> LiveHub:
        assert not started, "one hub per test"
        env.update({f"FLATTR_{key.upper()}": value for key, value in settings.items()})
        log = artifacts / "hub.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "flattr_hub.cli", "up", "--host", "127.0.0.1",
                 "--port", live_hub_url.rsplit(":", 1)[1]], cwd=tmp_path, env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        hub = LiveHub(live_hub_url, env, tmp_path, log, process)
        try:
            _wait_until_up(hub)
        except BaseException:
            _stop(hub)
            raise
        started.append(hub)
        return hub

    yield start
    for hub in started:
        _stop(hub)
        text = hub.log.read_text(errors="replace")
        assert hub.process.returncode == 0 and "Traceback" not in text, text


def _wait_until_up(hub: LiveHub) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert hub.process.poll() is None, f"flattr-hub up exited: {hub.log.read_text()}"
        if "a worker and the scheduler are running" in hub.log.read_text(errors="replace"):
            with urllib.request.urlopen(hub.url + "/healthz", timeout=5) as response:
                assert response.status == 200
            return
        time.sleep(0.1)
    raise AssertionError(f"flattr-hub up did not start: {hub.log.read_text()}")


def _stop(hub: LiveHub) -> None:
    """Ctrl-C, as a person stops `up` (the test then checks that it stopped cleanly)."""
    if hub.process.poll() is None:
        hub.process.send_signal(signal.SIGINT)
    try:
        hub.process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(hub.process.pid, signal.SIGKILL)
        hub.process.wait()


@pytest.fixture
def oauth_fake() -> Iterator[tuple[FakeOAuthProvider, str]]:
    """The fake OAuth provider, served from a thread, and its URL."""
    fake = FakeOAuthProvider()
    with serve(fake.app()) as url:
        yield fake, url


@pytest.fixture
def stripe_fake(live_hub_url: str) -> Iterator[FakeStripe]:
    """The fake Stripe (API and checkout page), served from a thread at its `api_base`; it
    delivers its signed webhooks to the hub's `/webhooks/stripe`."""
    fake = FakeStripe(webhook_url=f"{live_hub_url}/webhooks/stripe")
    with serve(create_app(fake)) as url:
        fake.api_base = url
        yield fake


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium, for the test's pages."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page of headless Chromium; every wait is bounded by WAIT_MS, and an uncaught
    JavaScript error on any of its pages (a pop-up too) fails the test."""
    async with _fresh_page(browser) as tab:
        yield tab


@pytest.fixture
async def operator_page(browser: Browser) -> AsyncIterator[Page]:
    """A page like `page` in a browser context of its own (its own cookies): a second person."""
    async with _fresh_page(browser) as tab:
        yield tab


@asynccontextmanager
async def _fresh_page(browser: Browser) -> AsyncIterator[Page]:
    errors: list[str] = []
    context = await browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS)
    context.on("weberror", lambda web_error: errors.append(str(web_error.error)))
    try:
        tab = await context.new_page()
        # what the hub's Content-Security-Policy blocked (an inline script or style left over)
        tab.on("console", lambda message: errors.append(message.text)
               if "Content Security Policy" in message.text else None)
        yield tab
    finally:
        await context.close()
    assert not errors, f"JavaScript errors or CSP violations on the page: {errors}"
