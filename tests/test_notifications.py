"""Notifications: givers e-mailed (to a local aiosmtpd server) when someone they pledged to
claims their identity; creators of unclaimed Discord identities sent one DM (to a local fake of
Discord's REST API) when pledges start waiting, only on opted-in platforms, at most
`max_per_hour`, never after an opt-out; retries, leases and the sweeper; the settings page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from base.config import with_overrides
from base.tables.members import logins
from base.tables.notifications import notification_optouts, notification_outbox
from ledger import accounts, identities
from ledger.ingest import ingest
from ledger.schema import identities as identities_table
from ledger.settlement import settle
from ledger.sql import utcnow
from members.logins import sign_up
from notifications import delivery, outbox
from notifications.optout import optout_token, optout_url
from notifications.settings import set_pledgee_joined, settings_of
from pipeline import inbox
from pipeline.outbox import Leased
from pipeline.queues import wake
from tests.fakes.discord_api import FakeDiscordAPI
from tests.fakes.server import serve
from tests.fakes.smtp import Mailbox, free_port, smtp_server
from tests.hub_helpers import reinstall
from tests.ledger_helpers import feed, star
from tests.web_helpers import PASSWORD, post_form
from tests.web_helpers import sign_up as web_sign_up
from workers import notices as notice_jobs
from workers.jobs import process_batch
from workers.worker import FlattrWorker

pytest_plugins = ["tests.hub_fixtures"]

BOT_TOKEN = "bot-token-for-tests"
CREATOR = "222000000000000001"


@pytest.fixture
def discord_api():
    fake = FakeDiscordAPI(BOT_TOKEN)
    with serve(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture
def mailbox():
    box = Mailbox()
    with smtp_server(box) as port:
        box.port = port
        yield box


@pytest.fixture
def hub_config(hub_config, request):
    """The settings, with the bot and the fake Discord API, and the SMTP server, of the tests
    that use them."""
    overrides = {}
    if "discord_api" in request.fixturenames:
        url = request.getfixturevalue("discord_api").url
        overrides.update({"connectors.discord": {"bot_token": BOT_TOKEN, "api_base": url},
                          "notifications.platforms": ["discord"]})
    if "mailbox" in request.fixturenames:
        port = request.getfixturevalue("mailbox").port
        overrides["notifications"] = {"smtp_host": "127.0.0.1", "smtp_port": port,
                                      "smtp_starttls": False}
    return with_overrides(hub_config, overrides)


def member(engine, config, name: str, email: str | None, platform: str, account: str,
           verified: bool = True) -> int:
    """A funded member (with an e-mail address, verified unless not `verified`, or none) who
    gives with a linked, unclaimed identity."""
    with engine.begin() as conn:
        uid = sign_up(conn, name, PASSWORD, email)
        if verified:
            conn.execute(update(logins).where(logins.c.user_id == uid)
                         .values(email_verified_at=utcnow()))
        accounts.set_budget(conn, uid, 500, config.money)
        accounts.credit_funds(conn, uid, 2000, "test", f"test:{name}")
        identities.link(conn, uid, platform, account)
    return uid


def react(actor: str, message: str, owner: str = CREATOR, when: str = "2026-11-02T10:00:00"):
    return star(actor, message, owner, when, platform="discord")


def through_the_queue(context, *events) -> None:
    """Events in through the inbox, drained and their notices sent by a burst worker."""
    with context.engine.begin() as conn:
        inbox.append(conn, [inbox.Entry(event, None) for event in events])
    wake(context.redis)
    FlattrWorker(["events", "notifications"], connection=context.redis).work(burst=True)


def outbox_rows(engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(notification_outbox)
                                 .order_by(notification_outbox.c.id)))


def record_waiting(engine, config, owners: list[str]) -> list[int]:
    """A giver's reactions to messages of the Discord identities `owners`, ingested and their
    notices recorded in one transaction, as `process_batch` does: the new notices."""
    with engine.connect() as conn:
        giver = conn.execute(select(identities_table.c.id).where(
            identities_table.c.platform_user_id == "111")).first()
    if giver is None:
        member(engine, config, "ana", None, "discord", "111")
    events = [react("111", f"x{owner}-{len(owners)}", owner=owner) for owner in owners]
    with engine.begin() as conn:
        result = ingest(conn, events)
        return outbox.record_for_ingest(conn, config, events, result)


def claim(engine, name: str, platform: str, account: str) -> int:
    with engine.begin() as conn:
        uid = accounts.create_user(conn, name)
        iid = identities.link(conn, uid, platform, account, claim=True)
        outbox.identity_claimed(conn, iid, uid)
    return iid


# --- givers: someone you pledged to joined ------------------------------------------------

def test_givers_are_emailed_when_someone_they_pledged_to_joins(engine, hub_config,
                                                               worker_context, mailbox):
    member(engine, hub_config, "ana", "ana@example.org", "github", "ana-gh")
    member(engine, hub_config, "bo", "bo@example.org", "github", "bo-gh")
    member(engine, hub_config, "dee", None, "github", "dee-gh")  # no address: not told
    member(engine, hub_config, "eve", "eve@example.org", "github", "eve-gh")  # not a giver
    feed(engine, star("ana-gh", "cy/song", "cy-gh", "2026-06-03T10:00:00"))
    settle(engine, "2026-06", hub_config.money)  # ana's June flattr is now a waiting pledge
    feed(engine, star("bo-gh", "cy/tune", "cy-gh", "2026-11-02T10:00:00"),
         star("dee-gh", "cy/tune", "cy-gh", "2026-11-02T11:00:00"))
    claim(engine, "cy", "github", "cy-gh")
    assert [row.state for row in outbox_rows(engine)] == ["pending", "pending"]
    assert notice_jobs.dispatch_due(now=utcnow() + timedelta(minutes=5)) == 2
    FlattrWorker(["notifications"], connection=worker_context.redis).work(burst=True)
    assert sorted(message["To"] for message in mailbox.messages) == ["ana@example.org",
                                                                     "bo@example.org"]
    message = mailbox.messages[0]
    assert message["Subject"] == "cy-gh joined Flattr Hub"
    assert message["From"] == "flattr-hub@localhost"
    assert "/settings/notifications" in message.get_content()
    assert {(row.state, row.attempts) for row in outbox_rows(engine)} == {("sent", 1)}
    # marked sent: a job for it again (a duplicate, a late sweep) sends nothing
    notice = outbox_rows(engine)[0].id
    assert delivery.attempt(engine, hub_config, notice, now=utcnow() + timedelta(days=1)
                            ).state == "not_due"
    assert notice_jobs.dispatch_due(now=utcnow() + timedelta(days=1)) == 0
    assert len(mailbox.messages) == 2


def test_a_giver_who_turned_it_off_gets_no_email(engine, hub_config, worker_context, mailbox):
    ana = member(engine, hub_config, "ana", "ana@example.org", "github", "ana-gh")
    bo = member(engine, hub_config, "bo", "bo@example.org", "github", "bo-gh")
    feed(engine, star("ana-gh", "cy/song", "cy-gh", "2026-11-02T10:00:00"),
         star("bo-gh", "cy/song", "cy-gh", "2026-11-02T11:00:00"))
    with engine.begin() as conn:
        set_pledgee_joined(conn, ana, False)  # before the claim: nothing recorded
    claim(engine, "cy", "github", "cy-gh")
    [row] = outbox_rows(engine)
    assert row.user_id == bo
    with engine.begin() as conn:
        set_pledgee_joined(conn, bo, False)  # after it, before sending: skipped
    assert delivery.attempt(engine, hub_config, row.id).state == "skipped"
    assert mailbox.messages == []
    assert outbox_rows(engine)[0].last_error == "turned off"


def test_the_creator_who_claims_is_not_told_of_their_own_pledges(engine, hub_config):
    ana = member(engine, hub_config, "ana", "ana@example.org", "github", "ana-gh")
    feed(engine, star("ana-gh", "cy/song", "cy-gh", "2026-11-02T10:00:00"))
    with engine.begin() as conn:
        iid = identities.link(conn, ana, "github", "cy-gh", claim=True)
        outbox.identity_claimed(conn, iid, ana)
        outbox.identity_claimed(conn, iid, ana)
    assert outbox_rows(engine) == []


def test_a_failing_smtp_server_is_retried_until_it_accepts(engine, hub_config, mailbox):
    member(engine, hub_config, "ana", "ana@example.org", "github", "ana-gh")
    feed(engine, star("ana-gh", "cy/song", "cy-gh", "2026-11-02T10:00:00"))
    claim(engine, "cy", "github", "cy-gh")
    [row] = outbox_rows(engine)
    mailbox.failures = 2
    now = utcnow()
    first = delivery.attempt(engine, hub_config, row.id, now=now)
    assert (first.state, first.retry_at) == ("pending", now + timedelta(seconds=30))
    assert delivery.attempt(engine, hub_config, row.id, now=now).state == "not_due"
    second = delivery.attempt(engine, hub_config, row.id, now=first.retry_at)
    assert (second.state, second.retry_at) == ("pending",
                                               first.retry_at + timedelta(minutes=2))
    assert outbox_rows(engine)[0].last_error == "SMTP 451"
    assert delivery.attempt(engine, hub_config, row.id, now=second.retry_at).state == "sent"
    assert (mailbox.refused, len(mailbox.messages)) == (2, 1)
    assert outbox_rows(engine)[0].attempts == 3


def test_an_unreachable_smtp_server_fails_after_the_last_retry(engine, hub_config):
    hub_config = with_overrides(hub_config, {"notifications": dict(
        smtp_host="127.0.0.1", smtp_port=free_port(), smtp_starttls=False)})
    member(engine, hub_config, "ana", "ana@example.org", "github", "ana-gh")
    feed(engine, star("ana-gh", "cy/song", "cy-gh", "2026-11-02T10:00:00"))
    claim(engine, "cy", "github", "cy-gh")
    [row] = outbox_rows(engine)
    now = utcnow()
    states = []
    for _ in delivery.RETRY_SCHEDULE:
        outcome = delivery.attempt(engine, hub_config, row.id, now=now)
        states.append(outcome.state)
        now = outcome.retry_at or now
    assert states == ["pending"] * (len(delivery.RETRY_SCHEDULE) - 1) + ["failed"]
    assert outbox_rows(engine)[0].state == "failed"


# --- creators: pledges are waiting ----------------------------------------------------------

def test_a_discord_creator_gets_one_dm_when_pledges_start_waiting(engine, hub_config,
                                                                  worker_context, discord_api):
    member(engine, hub_config, "ana", "ana@example.org", "discord", "111")
    member(engine, hub_config, "bo", None, "discord", "112")
    through_the_queue(worker_context, react("111", "m1"), react("112", "m1"))
    [dm] = discord_api.messages
    assert dm["recipient"] == CREATOR
    assert f"/claim/discord/{CREATOR}" in dm["content"]
    assert optout_url(hub_config, outbox_rows(engine)[0].identity_id) in dm["content"]
    assert BOT_TOKEN not in dm["content"]
    # more pledges later, and a second batch: told once only
    through_the_queue(worker_context, react("111", "m2", when="2026-11-03T10:00:00"))
    assert len(discord_api.messages) == 1
    assert [(row.kind, row.state) for row in outbox_rows(engine)] == [
        ("pledges_waiting", "sent")]


def test_no_dm_when_the_platform_is_not_opted_in(engine, hub_config, worker_context,
                                                 discord_api):
    worker_context = reinstall(worker_context, {"notifications.platforms": ["github"]})
    member(engine, hub_config, "ana", None, "discord", "111")
    through_the_queue(worker_context, react("111", "m1"))
    assert (discord_api.messages, outbox_rows(engine)) == ([], [])
    worker_context = reinstall(worker_context, {"notifications.platforms": []})
    through_the_queue(worker_context, react("111", "m2"))
    assert (discord_api.messages, outbox_rows(engine)) == ([], [])


def test_no_dm_for_claimed_identities_or_without_the_bot(engine, hub_config, worker_context,
                                                         discord_api):
    member(engine, hub_config, "ana", None, "discord", "111")
    claim(engine, "cy", "discord", CREATOR)
    through_the_queue(worker_context, react("111", "m1"))  # a flattr, not a pledge
    worker_context = reinstall(worker_context, {"connectors.discord.bot_token": ""})
    through_the_queue(worker_context, react("111", "m2", owner="333"))
    assert (discord_api.messages, outbox_rows(engine)) == ([], [])


def test_a_creator_linked_by_a_member_is_emailed_instead(engine, hub_config, worker_context,
                                                         mailbox, discord_api):
    member(engine, hub_config, "ana", None, "discord", "111")
    member(engine, hub_config, "cy", "cy@example.org", "discord", CREATOR)  # linked, unclaimed
    through_the_queue(worker_context, react("111", "m1"))
    [message] = mailbox.messages
    assert (message["To"], message["Subject"]) == ("cy@example.org",
                                                   "Flattrs are waiting for you on Flattr Hub")
    assert f"/claim/discord/{CREATOR}" in message.get_content()
    assert discord_api.messages == []


def test_a_pending_notice_is_dropped_when_the_identity_is_claimed(engine, hub_config,
                                                                  discord_api):
    member(engine, hub_config, "ana", None, "discord", "111")
    with engine.begin() as conn:
        inbox.append(conn, [inbox.Entry(react("111", "m1"), None)])
    notices = process_batch(engine, 10, hub_config)[3]
    claim(engine, "cy", "discord", CREATOR)
    assert delivery.attempt(engine, hub_config, notices[0]).state == "not_due"
    assert outbox_rows(engine)[0].state == "skipped"
    assert discord_api.messages == []


def test_the_hourly_cap_holds(engine, hub_config, discord_api):
    hub_config = with_overrides(hub_config, {"notifications.max_per_hour": 2})
    rows = record_waiting(engine, hub_config, [f"40{n}" for n in range(3)])
    now = utcnow()
    outcomes = [delivery.attempt(engine, hub_config, notice, now=now) for notice in rows]
    assert [outcome.state for outcome in outcomes] == ["sent", "sent", "pending"]
    assert outcomes[2].retry_at == now + timedelta(hours=1)
    assert len(discord_api.messages) == 2
    later = now + timedelta(minutes=59)
    assert delivery.attempt(engine, hub_config, rows[2], now=later).state == "not_due"
    assert delivery.attempt(engine, hub_config, rows[2], now=outcomes[2].retry_at
                            ).state == "sent"
    assert len(discord_api.messages) == 3


def test_a_refused_dm_fails_at_once(engine, hub_config, discord_api):
    discord_api.refusing.add(CREATOR)
    [notice] = record_waiting(engine, hub_config, [CREATOR])
    assert delivery.attempt(engine, hub_config, notice).state == "failed"
    assert outbox_rows(engine)[0].last_error == "Discord HTTP 403 code 50007"


def test_a_notice_whose_worker_died_is_sent_again_by_the_sweeper(engine, hub_config,
                                                                 worker_context, discord_api):
    [notice] = record_waiting(engine, hub_config, [CREATOR])
    now = utcnow()
    with engine.begin() as conn:  # leased by a worker that then died before sending
        assert isinstance(delivery.lease(conn, hub_config, notice, now), Leased)
    assert notice_jobs.dispatch_due(now=now + timedelta(seconds=61)) == 0  # lease still runs
    assert notice_jobs.dispatch_due(now=now + timedelta(minutes=3)) == 1
    leased_until = outbox_rows(engine)[0].next_attempt_at
    assert delivery.attempt(engine, hub_config, notice, now=leased_until).state == "sent"
    assert len(discord_api.messages) == 1


# --- opting out --------------------------------------------------------------------------

async def test_the_opt_out_link_stops_every_notice(hub_client, engine, hub_config,
                                                   discord_api):
    [notice] = record_waiting(engine, hub_config, [CREATOR])
    iid = outbox_rows(engine)[0].identity_id
    path = optout_url(hub_config, iid).split("://", 1)[1].split("/", 1)[1]
    page = await hub_client.get(f"/{path}")
    assert page.status == 200 and "Yes, never again" in await page.text()
    reply = await post_form(hub_client, f"/{path}", {}, token_from=f"/{path}")
    assert reply.status == 200 and "not hear from us again" in await reply.text()
    with engine.connect() as conn:
        assert conn.execute(select(notification_optouts.c.identity_id)).scalars().all() == [iid]
    assert outbox_rows(engine)[0].state == "skipped"
    assert record_waiting(engine, hub_config, [CREATOR]) == []
    with engine.begin() as conn:  # a notice recorded by some other path is still skipped
        conn.execute(notification_outbox.update().values(
            state="pending", next_attempt_at=utcnow(), last_error=None))
    assert delivery.attempt(engine, hub_config, notice).state == "skipped"
    assert discord_api.messages == []


async def test_a_forged_opt_out_link_changes_nothing(hub_client, engine, hub_config,
                                                     discord_api):
    [notice] = record_waiting(engine, hub_config, ["555"])
    iid = outbox_rows(engine)[0].identity_id
    genuine = optout_token(hub_config, iid)
    for token in (f"{iid}.forged", f"{iid + 1}.{genuine.split('.')[1]}", "x", f"{iid}"):
        page = await hub_client.get(f"/notifications/optout/{token}")
        assert page.status == 404
        reply = await post_form(hub_client, f"/notifications/optout/{token}", {},
                                token_from="/login")
        assert reply.status == 404 and "not valid" in await reply.text()
    unprotected = await hub_client.post(f"/notifications/optout/{genuine}", data={})
    assert unprotected.status == 403  # no CSRF token
    with engine.connect() as conn:
        assert conn.execute(select(notification_optouts)).all() == []
    assert outbox_rows(engine)[0].id == notice and outbox_rows(engine)[0].state == "pending"


# --- the settings page ---------------------------------------------------------------------

async def test_the_settings_page_turns_the_emails_off_and_on(hub_client, engine):
    away = await hub_client.get("/settings/notifications", allow_redirects=False)
    assert away.status == 303 and away.headers["Location"].startswith("/login")
    await web_sign_up(hub_client, "ana", email="ana@example.org")
    page = await (await hub_client.get("/settings/notifications")).text()
    assert re.search(r'name="pledgee_joined"\s*checked', page)
    assert "ana@example.org" in page
    reply = await post_form(hub_client, "/settings/notifications", {},
                            token_from="/settings/notifications")
    assert reply.status == 303
    with engine.connect() as conn:
        uid = conn.execute(select(logins.c.user_id)).scalar_one()
    page = await (await hub_client.get("/settings/notifications?saved=1")).text()
    assert "Saved." in page and not re.search(r'name="pledgee_joined"\s*checked', page)
    with engine.connect() as conn:
        assert settings_of(conn, uid).pledgee_joined is False
    await post_form(hub_client, "/settings/notifications", {"pledgee_joined": "on"},
                    token_from="/settings/notifications")
    with engine.connect() as conn:
        assert settings_of(conn, uid).pledgee_joined is True
    forged = await hub_client.post("/settings/notifications", data={"csrf_token": "no"})
    assert forged.status == 403
    with engine.connect() as conn:
        assert settings_of(conn, uid).pledgee_joined is True
