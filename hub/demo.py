"""`flattr-hub up --demo`: a few users who link and claim GitHub identities and can log in to the
web pages (ana is an operator), then a stream of signed GitHub star webhooks sent to the running
hub, so a newcomer sees flattrs arrive."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

import aiohttp
from sqlalchemy import Engine, func, select

from base.config import Settings
from hub.simulate import github_star
from ledger import accounts, identities
from ledger.errors import NotFound
from ledger.schema import flattrs
from members.logins import set_operator, set_password

USERS = (("ana", 101, 500, 5000), ("bo", 102, 300, 2000), ("cy", 103, 200, 1000),
         ("dee", 104, 1000, 10000))
DEMO_PASSWORD = "flattr-demo-password"  # a local demo only: printed when `up --demo` starts
REPOS = {owner: [owner * 100 + n for n in range(3)] for _, owner, _, _ in USERS}


def seed(engine: Engine, config: Settings) -> list[str]:
    """Create the demo users (those that do not exist yet); return the names created."""
    created = []
    with engine.begin() as conn:
        for name, github, budget, funds in USERS:
            try:
                accounts.user_id(conn, name)
                continue
            except NotFound:
                uid = accounts.create_user(conn, name)
            accounts.set_budget(conn, uid, budget, config.money)
            accounts.credit_funds(conn, uid, funds, "demo funds", f"demo:funds:{name}")
            identities.link(conn, uid, "github", str(github), claim=True)
            set_password(conn, uid, DEMO_PASSWORD)
            set_operator(conn, uid, name == "ana")
            created.append(name)
    return created


def flattr_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(flattrs).where(flattrs.c.retracted_at.is_(None))
        ).scalar_one()


async def stream(url: str, secret: str, stop: asyncio.Event, report: Callable[[str], None],
                 count_flattrs: Callable[[], int], *, per_second: float = 4.0,
                 report_every: float = 5.0) -> None:
    """Send random signed stars (and a few unstars) to `url` until `stop` is set, reporting the
    totals every `report_every` seconds."""
    rng = random.Random()
    givers = [github for _, github, _, _ in USERS]
    sent = accepted = 0
    loop = asyncio.get_running_loop()
    next_report = loop.time() + report_every
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            sender = rng.choice(givers)
            owner = rng.choice([g for g in givers if g != sender])
            action = "deleted" if rng.random() < 0.1 else "created"
            body, headers = github_star(secret, sender=sender, repo=rng.choice(REPOS[owner]),
                                        owner=owner, action=action)
            try:
                async with session.post(f"{url}/webhooks/github", data=body,
                                        headers=headers) as response:
                    accepted += response.status == 202
            except aiohttp.ClientError:
                pass
            sent += 1
            if loop.time() >= next_report:
                flattrs_now = await loop.run_in_executor(None, count_flattrs)
                report(f"demo: {sent} star webhooks sent, {accepted} accepted, "
                       f"{flattrs_now} flattrs recorded")
                next_report = loop.time() + report_every
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1 / per_second)
