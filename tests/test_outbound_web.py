"""The members' webhook page (/settings/webhooks): an endpoint registered from the page, its
secret shown once, a real delivery to a local aiohttp receiver verified with that secret, the
delivery log, Resend (same webhook-id), disable/enable/delete, other members' endpoints
answering 404, private and metadata addresses refused (at registration and at sending), and
forms without a CSRF token refused."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from rq.job import Job
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from base import public_net
from base.config import with_overrides
from base.tables.outbound import outbound_deliveries
from ledger import accounts
from outbound import delivery, endpoints, events
from pipeline.queues import queue
from tests.fakes.dns_server import FakeDNS
from tests.fakes.webhook_receiver import Receiver
from tests.web_helpers import csrf_token, post_form, sign_up

pytest_plugins = ["tests.hub_fixtures"]

LOCAL = {"outbound.allow_private": True}  # the receiver is on 127.0.0.1

PAGE = "/settings/webhooks"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


async def register(client: Any, url: str, *events: str) -> Any:
    token = await csrf_token(client, PAGE)
    form = [("csrf_token", token), ("url", url)] + [("events", kind) for kind in events]
    return await client.post(PAGE, data=form, allow_redirects=False)


def user_id(engine: Any, name: str) -> int:
    with engine.connect() as conn:
        return accounts.user_id(conn, name)


def endpoints_of(engine: Any, name: str) -> list[endpoints.Endpoint]:
    with engine.connect() as conn:
        return endpoints.list_endpoints(conn, accounts.user_id(conn, name))


def emit(engine: Any, owner: int) -> int:
    with engine.begin() as conn:
        [delivery_id] = events.emit(conn, "flattr.received", {"flattr_id": 7}, owner)
    return delivery_id


def state(engine: Any, delivery_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(outbound_deliveries)
                            .where(outbound_deliveries.c.id == delivery_id)).one()


async def send(engine: Any, config: Any, delivery_id: int) -> delivery.Attempt:
    """What the `outbound` job does, off the event loop (the receiver answers on it)."""
    return await asyncio.to_thread(delivery.attempt, engine, config, delivery_id)


@pytest.mark.settings(LOCAL)
async def test_register_receive_verify_log_and_resend(hub_client, hub_config, engine, redis,
                                                      aiohttp_server):
    receiver = Receiver(204)
    url = str((await aiohttp_server(receiver.app(), host="127.0.0.1")).make_url("/hook"))
    await sign_up(hub_client, "cy")

    reply = await register(hub_client, url, "flattr.received", "settlement.completed")
    page = await reply.text()
    assert reply.status == 200, page
    assert reply.headers["Cache-Control"] == "no-store"
    [secret] = SECRET.findall(page)
    [endpoint] = endpoints_of(engine, "cy")
    assert (endpoint.url, endpoint.event_types, endpoint.enabled, endpoint.partner) == (
        url, ("flattr.received", "settlement.completed"), True, False)
    listing = await (await hub_client.get(PAGE)).text()
    assert url in listing and "whsec_" not in listing  # shown once, never again
    assert "whsec_" not in await (await hub_client.get(f"{PAGE}/{endpoint.id}")).text()

    delivery_id = emit(engine, user_id(engine, "cy"))
    assert await send(engine, hub_config, delivery_id) == delivery.Attempt("delivered", 204)
    [(headers, body)] = receiver.requests
    assert Webhook(secret).verify(body, headers)["data"] == {"flattr_id": 7}
    webhook_id = state(engine, delivery_id).webhook_id
    assert headers["webhook-id"] == webhook_id

    log = await (await hub_client.get(f"{PAGE}/{endpoint.id}")).text()
    row = log[log.index(webhook_id):]
    assert re.search(r"<td>delivered</td>\s*<td class=\"num\">1</td>\s*<td>HTTP 204</td>", row)
    assert f"/deliveries/{delivery_id}/resend" in log

    reply = await post_form(hub_client, f"{PAGE}/{endpoint.id}/deliveries/{delivery_id}/resend",
                            {}, token_from=f"{PAGE}/{endpoint.id}")
    assert (reply.status, reply.headers["Location"]) == (
        303, f"{PAGE}/{endpoint.id}?done=resent")
    [job_id] = queue("outbound", redis).job_ids
    assert Job.fetch(job_id, connection=redis).args == (delivery_id,)
    assert (state(engine, delivery_id).state, state(engine, delivery_id).attempts) == (
        "pending", 0)
    assert await send(engine, hub_config, delivery_id) == delivery.Attempt("delivered", 204)
    [_, (again, body_again)] = receiver.requests
    assert again["webhook-id"] == webhook_id and body_again == body
    assert Webhook(secret).verify(body_again, again)["type"] == "flattr.received"


@pytest.mark.settings(LOCAL)
async def test_disable_enable_and_delete_from_the_page(hub_client, hub_config, engine, redis):
    await sign_up(hub_client, "cy")
    assert (await register(hub_client, "http://127.0.0.1:9/hook", "flattr.received")).status \
        == 200
    [endpoint] = endpoints_of(engine, "cy")
    delivery_id = emit(engine, user_id(engine, "cy"))
    base = f"{PAGE}/{endpoint.id}"

    reply = await post_form(hub_client, f"{base}/disable", {}, token_from=base)
    assert (reply.status, reply.headers["Location"]) == (303, f"{base}?done=disabled")
    [endpoint] = endpoints_of(engine, "cy")
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "disabled by its owner")
    assert state(engine, delivery_id).state == "failed"
    assert "disabled: disabled by its owner" in await (await hub_client.get(PAGE)).text()

    reply = await post_form(hub_client, f"{base}/deliveries/{delivery_id}/resend", {},
                            token_from=base)
    assert reply.status == 409
    assert "is disabled; enable it first" in await reply.text()
    assert queue("outbound", redis).count == 0

    reply = await post_form(hub_client, f"{base}/enable", {}, token_from=base)
    assert reply.status == 303
    assert endpoints_of(engine, "cy")[0].enabled is True
    reply = await post_form(hub_client, f"{base}/delete", {}, token_from=base)
    assert (reply.status, reply.headers["Location"]) == (303, f"{PAGE}?deleted=1")
    assert endpoints_of(engine, "cy") == []
    assert (await hub_client.get(base)).status == 404


@pytest.mark.settings(LOCAL)
async def test_another_members_endpoints_and_deliveries_answer_404(hub_client, hub_config,
                                                                   engine, redis):
    await sign_up(hub_client, "ana")
    assert (await register(hub_client, "http://127.0.0.1:9/ana", "flattr.received")).status \
        == 200
    [theirs] = endpoints_of(engine, "ana")
    delivery_id = emit(engine, user_id(engine, "ana"))
    hub_client.session.cookie_jar.clear()
    await sign_up(hub_client, "bo")
    assert (await register(hub_client, "http://127.0.0.1:9/bo", "flattr.received")).status \
        == 200
    [mine] = endpoints_of(engine, "bo")

    assert "http://127.0.0.1:9/ana" not in await (await hub_client.get(PAGE)).text()
    assert (await hub_client.get(f"{PAGE}/{theirs.id}")).status == 404
    for action in ("disable", "enable", "delete", f"deliveries/{delivery_id}/resend"):
        reply = await post_form(hub_client, f"{PAGE}/{theirs.id}/{action}", {}, token_from=PAGE)
        assert reply.status == 404, action
    # Their delivery through my endpoint's path is not found either.
    reply = await post_form(hub_client, f"{PAGE}/{mine.id}/deliveries/{delivery_id}/resend",
                            {}, token_from=PAGE)
    assert reply.status == 404
    assert endpoints_of(engine, "ana") == [theirs]
    assert (state(engine, delivery_id).state, queue("outbound", redis).count) == ("pending", 0)


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:8080/hook", "has a private, loopback, link-local or reserved address"),
    ("http://169.254.169.254/latest/meta-data", "has a private, loopback, link-local"),
    ("http://[::ffff:10.0.0.1]/hook", "has a private, loopback, link-local"),
    ("http://localhost/hook", "has a private, loopback, link-local"),
    ("ftp://example.org/hook", "must be http:// or https://"),
])
async def test_private_addresses_and_other_schemes_are_refused(hub_client, engine, url,
                                                               message):
    await sign_up(hub_client, "cy")
    reply = await register(hub_client, url, "flattr.received")
    page = await reply.text()
    assert reply.status == 400
    assert message in page
    assert f'value="{url}"' in page  # the form comes back filled in
    assert endpoints_of(engine, "cy") == []


async def test_ipv4_hidden_in_ipv6_is_refused_in_every_spelling(hub_client, engine):
    """IPv4-compatible, IPv4-mapped and -translated spellings, 6to4, NAT64 (both prefixes)
    and Teredo forms of private addresses."""
    await sign_up(hub_client, "cy")
    for address in ("::7f00:1", "::127.0.0.1", "::ffff:0:7f00:1", "::ffff:0:127.0.0.1",
                    "::ffff:127.0.0.1", "0:0:0:0:0:ffff:7f00:1", "2002:7f00:1::1",
                    "2002:a9fe:a9fe::", "64:ff9b::7f00:1", "64:ff9b::10.0.0.1",
                    "64:ff9b:1::a00:1", "2001:0:4136:e378:8000:63bf:80ff:fffe"):
        reply = await register(hub_client, f"http://[{address}]:8080/hook", "flattr.received")
        assert reply.status == 400, address
        assert "has a private, loopback, link-local" in await reply.text(), address
    assert endpoints_of(engine, "cy") == []


async def test_members_can_not_subscribe_to_partner_events(hub_client, engine):
    await sign_up(hub_client, "cy")
    reply = await register(hub_client, "https://x.example/hook", "pledge.created")
    assert reply.status == 400
    assert "pledge.created is sent to partner endpoints only" in await reply.text()
    reply = await register(hub_client, "https://x.example/hook")
    assert "name at least one event type" in await reply.text()
    assert endpoints_of(engine, "cy") == []


@pytest.mark.settings(LOCAL)
async def test_a_private_address_is_refused_again_when_sending(hub_client, hub_config, engine,
                                                               aiohttp_server):
    receiver = Receiver(204)
    url = str((await aiohttp_server(receiver.app(), host="127.0.0.1")).make_url("/hook"))
    await sign_up(hub_client, "cy")
    assert (await register(hub_client, url, "flattr.received")).status == 200
    delivery_id = emit(engine, user_id(engine, "cy"))

    result = await send(engine, with_overrides(hub_config, {"outbound.allow_private": False}),
                        delivery_id)
    assert (result.state, result.status) == ("pending", None)
    assert state(engine, delivery_id).last_error == "refused: the host has no public address"
    assert receiver.requests == []


@pytest.mark.settings(LOCAL)
async def test_forms_without_the_csrf_token_are_refused(hub_client, hub_config, engine):
    await sign_up(hub_client, "cy")
    reply = await hub_client.post(PAGE, data={"url": "http://127.0.0.1:9/hook",
                                              "events": "flattr.received"})
    assert reply.status == 403
    assert endpoints_of(engine, "cy") == []
    assert (await register(hub_client, "http://127.0.0.1:9/hook", "flattr.received")).status \
        == 200
    [endpoint] = endpoints_of(engine, "cy")
    delivery_id = emit(engine, user_id(engine, "cy"))
    for action in ("disable", "delete", f"deliveries/{delivery_id}/resend"):
        reply = await hub_client.post(f"{PAGE}/{endpoint.id}/{action}", data={})
        assert reply.status == 403, action
    assert endpoints_of(engine, "cy") == [endpoint]


async def test_the_page_needs_a_member(hub_client):
    reply = await hub_client.get(PAGE, allow_redirects=False)
    assert (reply.status, reply.headers["Location"]) == (303, "/login?next=/settings/webhooks")
    await sign_up(hub_client, "cy")
    page = await (await hub_client.get(PAGE)).text()
    assert 'href="/settings/webhooks"' in page and "You have no endpoints yet." in page


async def test_deliveries_connect_to_the_address_that_was_checked(aiohttp_server):
    """No second DNS look-up after the check (a rebinding answer would gain nothing): the
    connection goes to the checked address, the request still names the endpoint's host."""
    receiver = Receiver(204)
    port = (await aiohttp_server(receiver.app(), host="127.0.0.1")).port
    # hook.invalid's DNS answer is let through: the guard allows that one address
    with FakeDNS({("hook.invalid", "A"): ["127.0.0.1"]}) as dns:
        guard = public_net.Guard(nameservers=("127.0.0.1",), dns_port=dns.port,
                                 allowed=public_net.networks(["127.0.0.1"]))
        reply = await asyncio.to_thread(public_net.guarded_post,
                                        f"http://hook.invalid:{port}/hook", guard, data=b"{}",
                                        timeout=5)
    assert reply.status_code == 204
    assert dns.questions == [("hook.invalid", "A"), ("hook.invalid", "AAAA")]  # asked once
    [(headers, _)] = receiver.requests
    assert headers["Host"] == f"hook.invalid:{port}"
