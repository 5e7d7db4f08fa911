"""Claiming a web site: a token, proved by a meta tag, a /.well-known/ file or a DNS TXT
record, against a real local web server and a real local DNS server (tests/fakes/dns_server)."""

from __future__ import annotations

import html
import os
import re
import socket
from collections.abc import Iterator

import pytest
from aiohttp import web
from sqlalchemy import select

from base.config import with_overrides
from base.tables.sites import site_claims
from flattr_hub.cli import main
from hub.app import create_app
from hub.web.session import CONFIG
from ledger import accounts, identities
from ledger.schema import identities as identities_table
from members.contests import contests
from members.site_proof import ProofSettings, find_proof
from tests.fakes.dns_server import FakeDNS
from tests.web_helpers import post_form, sign_up

pytest_plugins = ["tests.hub_fixtures"]
HOST = "example.org"
HTML = {"Accept": "text/html"}


class Site:
    """A web site whose pages a test sets: path → (status, body, headers)."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, str, dict[str, str]]] = {}
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        status, body, headers = self.pages.get(request.path, (404, "not found", {}))
        return web.Response(status=status, text=body, headers=headers, content_type="text/html")


@pytest.fixture
def dns_server() -> Iterator[FakeDNS]:
    with FakeDNS({(HOST, "A"): ["127.0.0.1"], ("www.example.org", "A"): ["127.0.0.1"]}) as server:
        yield server


@pytest.fixture
async def site(aiohttp_server) -> Site:
    state = Site()
    app = web.Application()
    app.router.add_get("/{tail:.*}", state.handle)
    state.port = (await aiohttp_server(app)).port
    return state


@pytest.fixture
async def client(aiohttp_client, hub_config, engine, redis, dns_server, site):
    hub_config = with_overrides(hub_config, {"web": dict(
        site_claim_scheme="http", site_claim_port=site.port,
        site_claim_nameservers=["127.0.0.1"], site_claim_dns_port=dns_server.port,
        site_claim_allow_private=True, site_claim_timeout_seconds=2, site_claim_max_bytes=4096)})
    return await aiohttp_client(create_app(hub_config, engine, redis))


async def ask_to_claim(client, host_text: str = HOST) -> str:
    """Sign up ana, ask to claim the site; returns the token the page shows."""
    await sign_up(client, "ana")
    reply = await post_form(client, "/sites", {"host": host_text}, token_from="/sites")
    assert reply.status == 303 and reply.headers["Location"] == f"/sites/{HOST}"
    page = await (await client.get(f"/sites/{HOST}")).text()
    token = re.search(r"<pre>([A-Za-z0-9_-]{20,})</pre>", page).group(1)
    assert html.unescape(f'<meta name="flattr:verification" content="{token}">') in (
        html.unescape(page))
    return token


async def check(client):
    return await post_form(client, f"/sites/{HOST}/verify", {}, token_from=f"/sites/{HOST}")


def owner(engine) -> int | None:
    with engine.connect() as conn:
        return conn.execute(select(identities_table.c.claimed_by).where(
            identities_table.c.platform == "web",
            identities_table.c.platform_user_id == HOST)).scalar()


def meta_page(token: str) -> str:
    return (f'<html><head><title>Mine</title><META content="{token}" '
            f'name="flattr:verification"></head><body>hello</body></html>')


@pytest.mark.parametrize("proof", ["meta", "well-known", "dns"])
async def test_each_proof_claims_the_site(client, engine, site, dns_server, proof):
    token = await ask_to_claim(client, "https://Example.ORG/blog/post?x=1")
    if proof == "meta":
        # The front page moved: one redirect is followed.
        site.pages["/"] = (302, "", {"Location": "/home"})
        site.pages["/home"] = (200, meta_page(token), {})
    elif proof == "well-known":
        site.pages["/.well-known/flattr.txt"] = (200, f"some-other-token\n{token}\n", {})
    else:
        dns_server.records[(HOST, "TXT")] = ["v=spf1 -all", f"flattr-verification={token}"]
    reply = await check(client)
    assert reply.status == 200
    assert f"{HOST} is yours" in await reply.text()
    with engine.connect() as conn:
        uid = accounts.user_id(conn, "ana")
        verified = conn.execute(select(site_claims.c.verified_at)).scalar_one()
    assert owner(engine) == uid and verified is not None
    listing = await (await client.get("/sites")).text()
    assert "<td>yours</td>" in listing and "waiting for proof" not in listing


async def test_a_wrong_token_is_refused_and_says_what_was_seen(client, engine, site, dns_server):
    token = await ask_to_claim(client)
    site.pages["/"] = (200, meta_page("not-the-token-" + "x" * 20), {})
    site.pages["/.well-known/flattr.txt"] = (200, token[:-1], {})
    dns_server.records[(HOST, "TXT")] = [f"flattr-verification={token}x"]
    reply = await check(client)
    assert reply.status == 400
    page = await reply.text()
    assert "the verification token was not found on the site" in page
    reasons = re.findall(r"<li>([^<]*)</li>", page)
    assert reasons == ["front page: the token was not found",
                       "/.well-known/flattr.txt: the token was not found",
                       f"DNS: no TXT record flattr-verification=&lt;your token&gt; on {HOST}"]
    assert owner(engine) is None


async def test_fetches_are_limited(client, engine, site):
    token = await ask_to_claim(client)
    # A redirect loop, and a file whose token lies beyond the bytes read.
    site.pages["/"] = (302, "", {"Location": "/again"})
    site.pages["/again"] = (302, "", {"Location": "/"})
    site.pages["/.well-known/flattr.txt"] = (200, "x" * 5000 + f" {token}", {})
    page = await (await check(client)).text()
    assert "front page: more than 3 redirects" in page
    assert "/.well-known/flattr.txt: the token was not found" in page
    assert owner(engine) is None


@pytest.mark.parametrize("address", [
    "10.0.0.1", "2002:a00:1::", "64:ff9b::a00:1", "::7f00:1", "::127.0.0.1", "::ffff:0:7f00:1",
    "::ffff:127.0.0.1", "64:ff9b:1::a00:1", "2001:0:4136:e378:8000:63bf:80ff:fffe"])
async def test_addresses_written_as_ip_literals_are_checked_too(dns_server, address):
    """IPv4 private addresses hidden in IPv6 (IPv4-compatible, mapped and translated, 6to4,
    NAT64, Teredo) are refused too."""
    settings = ProofSettings("http", 0, ("127.0.0.1",), dns_server.port, False, 2, 4096)
    outcome = await find_proof(settings, address, "token")
    assert outcome.method is None
    assert outcome.reasons[:2] == ["front page: that address is not a public one",
                                   "/.well-known/flattr.txt: that address is not a public one"]


async def test_private_addresses_are_not_fetched_unless_allowed(client, engine, redis, site,
                                                                aiohttp_client):
    token = await ask_to_claim(client)
    site.pages["/"] = (200, meta_page(token), {})
    refusing = await aiohttp_client(create_app(with_overrides(
        client.app[CONFIG], {"web.site_claim_allow_private": False}), engine, redis),
        cookie_jar=client.session.cookie_jar)  # the same member, on a hub that refuses
    page = await (await check(refusing)).text()
    assert f"front page: {HOST} resolves to an address that is not a public one" in page
    assert owner(engine) is None
    assert (await check(client)).status == 200


async def test_bad_hosts_are_refused(client, engine):
    await sign_up(client, "ana")
    for host, message in (("127.0.0.1", "not an IP address"), ("example.org:8080", "port"),
                          ("localhost", "not a host name"), ("", "not a host name")):
        reply = await post_form(client, "/sites", {"host": host}, token_from="/sites")
        assert reply.status == 400, host
        assert message in await reply.text()
    with engine.connect() as conn:
        assert conn.execute(select(site_claims)).first() is None


async def test_proving_a_site_someone_holds_opens_a_claim_contest(client, engine, dns_server):
    with engine.begin() as conn:
        bo = accounts.create_user(conn, "bo")
        identities.link(conn, bo, "web", HOST, claim=True)
    token = await ask_to_claim(client)
    page = await (await client.get(f"/sites/{HOST}")).text()
    assert f"bo has claimed {HOST}" in page
    dns_server.records[(HOST, "TXT")] = [f"flattr-verification={token}"]
    reply = await check(client)
    assert reply.status == 200
    assert "but bo had claimed it: an operator of this hub will decide" in await reply.text()
    assert owner(engine) == bo
    with engine.connect() as conn:
        [contest] = contests(conn, state="open")
    assert (contest.platform, contest.platform_user_id, contest.claimant, contest.holder) == (
        "web", HOST, "ana", "bo")
    assert (await check(client)).status == 200  # checking again opens no second contest
    with engine.connect() as conn:
        assert len(contests(conn)) == 1
    reply = await post_form(client, "/sites", {"host": HOST}, token_from="/sites")
    assert reply.status == 303  # still ana's claim, with the same token
    with engine.connect() as conn:
        assert conn.execute(select(site_claims.c.token)).scalars().all() == [token]


async def test_unknown_claims_are_404_and_pages_need_a_member(client):
    reply = await client.get("/sites", allow_redirects=False)
    assert reply.status == 303
    assert reply.headers["Location"] in ("/login?next=/sites", "/login?next=%2Fsites")
    await sign_up(client, "ana")
    reply = await client.get("/sites/other.example", headers=HTML)
    assert reply.status == 404 and "you have not asked to claim other.example" in (
        await reply.text())
    reply = await post_form(client, "/sites/other.example/verify", {}, token_from="/sites")
    assert reply.status == 404


def test_the_command_line_claims_and_verifies_a_site(db_url, engine, tmp_path, monkeypatch,
                                                      capsys):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: both page checks fail fast
    with FakeDNS({(HOST, "A"): ["127.0.0.1"]}) as dns_server:
        for name in [n for n in os.environ if n.startswith("FLATTR_")]:
            monkeypatch.delenv(name)
        monkeypatch.chdir(tmp_path)
        for name, value in {
                "FLATTR_DATABASE_URL": db_url, "FLATTR_DATA_DIR": str(tmp_path / "var"),
                "FLATTR_WEB__SITE_CLAIM_SCHEME": "http", "FLATTR_WEB__SITE_CLAIM_PORT": str(port),
                "FLATTR_WEB__SITE_CLAIM_NAMESERVERS": "127.0.0.1",
                "FLATTR_WEB__SITE_CLAIM_DNS_PORT": str(dns_server.port),
                "FLATTR_WEB__SITE_CLAIM_ALLOW_PRIVATE": "true",
                "FLATTR_WEB__SITE_CLAIM_TIMEOUT_SECONDS": "2"}.items():
            monkeypatch.setenv(name, value)
        with engine.begin() as conn:
            ana = accounts.create_user(conn, "ana")
        assert main(["sites", "claim", "ana", "https://Example.org/"]) == 0
        token = re.search(r"TXT record flattr-verification=(\S+)", capsys.readouterr().out)[1]

        assert main(["sites", "verify", "ana", HOST]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "the site could not be reached" in err
        assert "DNS: no TXT record" in err and token not in err
        assert owner(engine) is None

        dns_server.records[(HOST, "TXT")] = [f"flattr-verification={token}"]
        assert main(["sites", "verify", "ana", "EXAMPLE.org"]) == 0
        assert capsys.readouterr().out == f"{HOST} is claimed by ana\n"
        assert owner(engine) == ana
