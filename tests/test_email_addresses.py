"""E-mail addresses: signing up answers the same whether or not the address is known (its
verified owner is told instead), a verified address belongs to one login without regard to
case, an address is confirmed by a signed link e-mailed to it (to the local SMTP server), and
notices go to confirmed addresses only."""

from __future__ import annotations

import re

import pytest
from alembic import command
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from base.config import with_overrides
from base.db import alembic_config
from base.tables.members import logins
from ledger import accounts
from ledger.db import make_engine
from ledger.settlement import settle
from ledger.sql import utcnow
from members.emails import verify_token
from tests.fakes.smtp import Mailbox, smtp_server
from tests.ledger_helpers import feed, star
from tests.test_notifications import claim, member, outbox_rows
from tests.web_helpers import post_form, sign_up

pytest_plugins = ["tests.hub_fixtures"]

LINK = re.compile(r"https?://\S+(/settings/email/verify/\S+)")


@pytest.fixture
def mailbox():
    box = Mailbox()
    with smtp_server(box) as port:
        box.port = port
        yield box


@pytest.fixture
def hub_config(hub_config, request):
    """The settings, e-mail sent to the test's SMTP server if it has one."""
    if "mailbox" not in request.fixturenames:
        return hub_config
    return with_overrides(hub_config, {"notifications": {
        "smtp_host": "127.0.0.1", "smtp_port": request.getfixturevalue("mailbox").port,
        "smtp_starttls": False}})


def login_of(engine, name: str):
    with engine.connect() as conn:
        return conn.execute(select(logins).where(
            logins.c.user_id == accounts.user_id(conn, name))).one()


async def confirm(client, path: str):
    page = await client.get(path)
    assert page.status == 200 and "Confirm that" in await page.text()
    return await post_form(client, path, {}, token_from=path)


async def test_signing_up_with_a_known_address_answers_the_same(hub_client, engine, mailbox):
    first = await sign_up(hub_client, "secret", email="secret.person@example.org")
    [link] = mailbox.messages
    assert link["To"] == "secret.person@example.org" and "secret" in link.get_content()
    path = LINK.search(link.get_content()).group(1)
    assert (await confirm(hub_client, path)).status == 200
    assert login_of(engine, "secret").email_verified_at is not None

    answers = {}
    for name, email in (("mallory", "SECRET.PERSON@example.org"),
                        ("newbie", "new.person@example.org")):
        hub_client.session.cookie_jar.clear()
        reply = await sign_up(hub_client, name, email=email)
        page = await (await hub_client.get("/settings/security")).text()
        answers[name] = (reply.status, reply.headers["Location"], first.headers["Location"],
                         page.replace(email, "ADDRESS").replace(name, "NAME").count("\n"),
                         "not confirmed yet" in page)
    assert answers["mallory"] == answers["newbie"] == (303, "/dashboard", "/dashboard",
                                                       answers["newbie"][3], True)
    told, newbie = mailbox.messages[1:]
    assert told["To"] == "SECRET.PERSON@example.org"
    assert "stays with your account, secret" in told.get_content() and not LINK.search(
        told.get_content())
    assert newbie["To"] == "new.person@example.org" and LINK.search(newbie.get_content())
    assert login_of(engine, "mallory").email_verified_at is None
    assert login_of(engine, "secret").email == "secret.person@example.org"


async def test_a_link_confirms_only_its_member_address_and_time(hub_client, engine, hub_config,
                                                                mailbox):
    await sign_up(hub_client, "ana", email="ana@example.org")
    path = LINK.search(mailbox.messages[0].get_content()).group(1)
    uid, expires, mac = path.rsplit("/", 1)[1].split(".")
    forged = [f"{int(uid) + 1}.{expires}.{mac}", f"{uid}.{int(expires) + 1}.{mac}",
              f"{uid}.{expires}.{mac[:-2]}xx", "nonsense", f"{uid}..{mac}"]
    for token in forged:
        assert (await hub_client.get(f"/settings/email/verify/{token}")).status == 404
        refused = await post_form(hub_client, f"/settings/email/verify/{token}", {},
                                  token_from="/settings/security")
        assert refused.status == 409
    expired = verify_token(hub_config, int(uid), "ana@example.org", expires=1)
    assert (await hub_client.get(f"/settings/email/verify/{expired}")).status == 404
    await post_form(hub_client, "/settings/security/email", {"email": "ana@elsewhere.example"},
                    token_from="/settings/security")
    assert (await hub_client.get(path)).status == 404  # the address changed since
    assert login_of(engine, "ana").email_verified_at is None
    new_path = LINK.search(mailbox.messages[1].get_content()).group(1)
    hub_client.session.cookie_jar.clear()  # the link works in any browser
    assert (await confirm(hub_client, new_path)).status == 200
    assert login_of(engine, "ana").email == "ana@elsewhere.example"


async def test_a_verified_address_belongs_to_one_login_whatever_its_case(hub_client, engine,
                                                                        mailbox):
    await sign_up(hub_client, "ana", email="Same@Example.org")
    hub_client.session.cookie_jar.clear()
    await sign_up(hub_client, "bo", email="same@example.ORG")  # nobody verified it yet: a link
    ana_link, bo_link = (LINK.search(m.get_content()).group(1) for m in mailbox.messages)
    assert (await confirm(hub_client, bo_link)).status == 200
    late = await confirm(hub_client, ana_link)
    assert late.status == 409 and "already confirmed for another account" in await late.text()
    with engine.begin() as conn, pytest.raises(IntegrityError):
        conn.execute(update(logins).where(logins.c.user_id == accounts.user_id(conn, "ana"))
                     .values(email_verified_at=utcnow()))


def test_notices_wait_for_a_confirmed_address(engine, hub_config):
    member(engine, hub_config, "ana", "ana@example.org", "github", "ana-gh", verified=False)
    member(engine, hub_config, "bo", "bo@example.org", "github", "bo-gh")
    feed(engine, star("ana-gh", "cy/song", "cy-gh", "2026-06-03T10:00:00"),
         star("bo-gh", "cy/song", "cy-gh", "2026-06-03T11:00:00"))
    settle(engine, "2026-06", hub_config.money)
    claim(engine, "cy", "github", "cy-gh")
    with engine.connect() as conn:
        bo = accounts.user_id(conn, "bo")
    assert [row.user_id for row in outbox_rows(engine)] == [bo]


def test_the_migration_keeps_addresses_that_differ_only_in_case(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(alembic_config(url), "0012")
    engine = make_engine(url)
    with engine.begin() as conn:
        for uid, email in ((1, "Person@Example.org"), (2, "person@example.org")):
            conn.execute(text("INSERT INTO users (id, name, created_at) VALUES "
                              "(:id, :name, CURRENT_TIMESTAMP)"), {"id": uid, "name": f"u{uid}"})
            conn.execute(text("INSERT INTO logins (user_id, email, operator, created_at) VALUES "
                              "(:id, :email, false, CURRENT_TIMESTAMP)"),
                         {"id": uid, "email": email})
    command.upgrade(alembic_config(url), "0016")
    with engine.begin() as conn:
        rows = conn.execute(select(logins.c.email, logins.c.email_verified_at)
                            .order_by(logins.c.user_id)).all()
        assert [tuple(row) for row in rows] == [("Person@Example.org", None),
                                                ("person@example.org", None)]
        conn.execute(update(logins).where(logins.c.user_id == 2)
                     .values(email_verified_at=utcnow()))
    with engine.begin() as conn, pytest.raises(IntegrityError):
        conn.execute(update(logins).where(logins.c.user_id == 1)
                     .values(email_verified_at=utcnow()))
    engine.dispose()
