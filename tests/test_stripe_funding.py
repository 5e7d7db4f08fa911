"""Adding funds: the money page sends the browser to Stripe Checkout (a local fake speaking
Stripe's API), and Stripe's signed webhook credits the funds exactly once."""

from __future__ import annotations

import json
import re
import time

import aiohttp
from sqlalchemy import select

from base.config import with_overrides
from hub.app import create_app
from ledger import accounts
from ledger.money_schema import provider_payments
from tests.fakes.stripe_api import signature_header
from tests.hub_helpers import METRICS_AUTH
from tests.ledger_checks import all_balances, balances, dump, problems
from tests.web_helpers import post_form, sign_up

pytest_plugins = ["tests.hub_fixtures", "tests.money_fixtures"]

NONCE = re.compile(r'name="nonce" value="([^"]+)"')


async def nonce_of(client, form_id: str) -> str:
    page = await (await client.get("/money")).text()
    form = page[page.index(f'id="{form_id}"'):]
    match = NONCE.search(form)
    assert match, f"no nonce in {form_id}"
    return match.group(1)


async def start_checkout(client, amount: str, nonce: str | None = None):
    nonce = nonce or await nonce_of(client, "funds-form")
    return await post_form(client, "/money/funds", {"amount": amount, "nonce": nonce},
                           token_from="/money")


async def user_id(engine, name: str) -> int:
    with engine.connect() as conn:
        return accounts.user_id(conn, name)


async def metric(client, line_start: str) -> float:
    text = await (await client.get("/metrics", headers=METRICS_AUTH)).text()
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_funding_through_checkout_credits_once(money_client, fake_stripe, engine):
    await sign_up(money_client, "ana")
    uid = await user_id(engine, "ana")
    reply = await start_checkout(money_client, "5.00")
    assert reply.status == 303
    checkout_url = reply.headers["Location"]
    assert checkout_url.startswith(fake_stripe.api_base + "/pay/cs_test_")
    sent = fake_stripe.requests[-1]
    assert sent["mode"] == "payment"
    assert sent["line_items[0][price_data][unit_amount]"] == "500"
    assert sent["line_items[0][price_data][currency]"] == "eur"
    assert sent["client_reference_id"] == "user:ana" and sent["metadata[user]"] == "ana"
    hub_base = str(money_client.make_url("")).rstrip("/")
    assert sent["success_url"] == f"{hub_base}/money?checkout=success"
    assert sent["cancel_url"] == f"{hub_base}/money?checkout=cancelled"
    assert balances(engine, uid)["funds"] == 0

    async with aiohttp.ClientSession() as browser:
        page = await (await browser.get(checkout_url)).text()
        assert "5.00 EUR" in page and 'id="pay"' in page
        action = re.search(r'<form method="post" action="([^"]+)"', page).group(1)
        paid = await browser.post(fake_stripe.api_base + action, allow_redirects=False)
    assert paid.status == 303 and paid.headers["Location"] == sent["success_url"]
    assert fake_stripe.deliveries == [("checkout.session.completed", 200)]
    assert balances(engine, uid) == {"funds": 500, "revenue": 0}
    assert all_balances(engine)["incoming:stripe"] == -500

    landing = await (await money_client.get("/money?checkout=success")).text()
    assert "Thank you!" in landing and "5.00 EUR" in landing

    session_id = checkout_url.rsplit("/", 1)[1]
    again = fake_stripe.event(session_id)  # a new event id for the same session
    assert await fake_stripe.deliver(again) == 200
    assert await fake_stripe.deliver(again) == 200
    late = fake_stripe.event(session_id, "checkout.session.async_payment_succeeded")
    assert await fake_stripe.deliver(late) == 200
    assert balances(engine, uid)["funds"] == 500
    with engine.connect() as conn:
        assert conn.execute(select(provider_payments.c.state)).scalars().all() == ["credited"]
    assert problems(engine) == []


async def test_a_form_sent_twice_makes_one_checkout_session(money_client, fake_stripe):
    await sign_up(money_client, "ana")
    nonce = await nonce_of(money_client, "funds-form")
    first = await start_checkout(money_client, "10.00", nonce)
    second = await start_checkout(money_client, "10.00", nonce)
    assert first.headers["Location"] == second.headers["Location"]
    assert len(fake_stripe.sessions) == 1


async def test_funding_amounts_outside_the_bounds_are_refused(money_client, fake_stripe,
                                                            money_config):
    await sign_up(money_client, "ana")
    too_big = money_config.payments.max_funding + 1
    for amount in ("1.99", f"{too_big // 100}.{too_big % 100:02d}", "abc", "-5", "1.234"):
        reply = await start_checkout(money_client, amount)
        assert reply.status == 400, amount
        assert 'role="alert"' in await reply.text()
    assert fake_stripe.requests == []
    assert (await start_checkout(money_client, "2.00")).status == 303


async def test_bad_or_stale_signatures_get_400_and_change_nothing(money_client, fake_stripe,
                                                                  engine):
    await sign_up(money_client, "ana")
    event = fake_stripe.event("cs_test_forged", metadata={"user": "ana"})
    before = dump(engine)
    rejected = 'flattr_webhooks_rejected_total{platform="stripe",reason="signature"}'
    counted = await metric(money_client, rejected)
    body = json.dumps(event).encode()
    cases = {
        "wrong secret": {"Stripe-Signature": signature_header(body, "whsec_other")},
        "too old": {"Stripe-Signature": signature_header(body, fake_stripe.webhook_secret,
                                                         int(time.time()) - 301)},
        "missing": {},
        "malformed": {"Stripe-Signature": "v1=abc"},
        "other body": {"Stripe-Signature": signature_header(body + b" ",
                                                            fake_stripe.webhook_secret)},
    }
    for name, headers in cases.items():
        reply = await money_client.post("/webhooks/stripe", data=body, headers=headers)
        assert reply.status == 400, name
        answer = await reply.json()
        assert answer["error"] == "invalid_signature", name
        assert fake_stripe.webhook_secret not in answer["error_description"]
    reply = await money_client.post("/webhooks/stripe", data=b"\xff\xfe", headers={
        "Stripe-Signature": signature_header(b"x", fake_stripe.webhook_secret)})
    assert reply.status == 400
    assert dump(engine) == before
    assert await metric(money_client, rejected) == counted + len(cases) + 1


async def test_an_unpaid_completion_waits_for_the_async_payment(money_client, fake_stripe,
                                                                engine):
    await sign_up(money_client, "ana")
    uid = await user_id(engine, "ana")
    session = "cs_test_sepa_debit"
    unpaid = fake_stripe.event(session, payment_status="unpaid", metadata={"user": "ana"})
    reply = await money_client.post("/webhooks/stripe", data=b"", headers={})
    assert reply.status == 400
    assert await fake_stripe.deliver(unpaid) == 200
    assert balances(engine, uid)["funds"] == 0
    failed = fake_stripe.event(session, "checkout.session.async_payment_failed",
                               metadata={"user": "ana"})
    assert await fake_stripe.deliver(failed) == 200
    assert balances(engine, uid)["funds"] == 0
    succeeded = fake_stripe.event(session, "checkout.session.async_payment_succeeded",
                                  payment_status="paid", metadata={"user": "ana"})
    assert await fake_stripe.deliver(succeeded) == 200
    assert balances(engine, uid)["funds"] == 500
    assert await fake_stripe.deliver(fake_stripe.event(session, metadata={"user": "ana"})) == 200
    assert balances(engine, uid)["funds"] == 500
    assert problems(engine) == []


async def test_other_events_are_answered_and_ignored(money_client, fake_stripe, engine):
    before = dump(engine)
    for kind in ("payment_intent.succeeded", "charge.refunded", "customer.created"):
        event = fake_stripe.event("cs_test_x", kind)
        assert await fake_stripe.deliver(event) == 200
    for signed_junk in (b'{"object": "event", "type": "checkout.session.completed", "data": 1}',
                        b'[1, 2]', b'{"object": "event"', b'{"object": "event", "type": '
                        b'"checkout.session.completed", "data": {"object": {"object": '
                        b'"checkout.session", "payment_status": "paid", "id": "cs_1"}}}'):
        reply = await money_client.post("/webhooks/stripe", data=signed_junk, headers={
            "Stripe-Signature": signature_header(signed_junk, fake_stripe.webhook_secret)})
        assert reply.status == 400, signed_junk
        assert (await reply.json())["error"] == "invalid_request"
    assert dump(engine) == before


async def test_a_payment_naming_nobody_is_kept_for_the_operator(money_client, fake_stripe,
                                                               engine):
    await sign_up(money_client, "ana")
    event = fake_stripe.event("cs_test_ghost", metadata={"user": "ghost"},
                              client_reference_id="user:ghost", amount_total=700)
    assert await fake_stripe.deliver(event) == 200
    assert await fake_stripe.deliver(event) == 200
    with engine.connect() as conn:
        rows = conn.execute(select(provider_payments.c.state, provider_payments.c.reference,
                                   provider_payments.c.amount, provider_payments.c.problem)
                            ).all()
    assert [tuple(row) for row in rows] == [
        ("unmatched", "ghost", 700, "names user ghost, who does not exist")]
    assert all_balances(engine).get("incoming:stripe", 0) == 0
    dollars = fake_stripe.event("cs_test_usd", metadata={"user": "ana"}, currency="usd")
    assert await fake_stripe.deliver(dollars) == 200
    assert balances(engine, await user_id(engine, "ana"))["funds"] == 0
    assert problems(engine) == []


async def test_the_webhook_is_off_without_its_secret(hub_client):
    reply = await hub_client.post("/webhooks/stripe", data=b"{}")
    assert reply.status == 404
    assert (await reply.json())["error"] == "not_found"


async def test_stripe_refusing_the_session_is_explained(aiohttp_client, money_config, engine,
                                                        redis, fake_stripe):
    money_config = with_overrides(money_config,
                                  {"payments.stripe.secret_key": "sk_test_revoked"})
    client = await aiohttp_client(create_app(money_config, engine, redis))
    await sign_up(client, "ana")
    reply = await start_checkout(client, "5.00")
    assert reply.status == 502
    text = await reply.text()
    assert "payment provider is not available" in text and "sk_test_revoked" not in text
    assert fake_stripe.sessions == {}
    cancelled = await (await client.get("/money?checkout=cancelled")).text()
    assert "Payment cancelled" in cancelled
