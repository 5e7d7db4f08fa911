"""Linking platform accounts by OAuth, logging in with them, and claim contests: the whole
redirect → authorize → callback → token → profile flow, through the hub's test client and a
local fake provider speaking each platform's format."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text, update
from yarl import URL

from base.config import Settings
from base.tables.connectors import poll_accounts
from base.tables.linking import claim_contests, oauth_pending
from base.tables.members import logins
from base.tables.notifications import notification_outbox
from base.vault import Vault, vault
from catalog.things import hub_identity
from connectors import polling
from connectors.soundcloud import SoundCloudPoller
from hub.app import create_app
from ledger import accounts
from ledger.events import NormalisedEvent
from ledger.identities import link
from ledger.ingest import ingest
from ledger.schema import identities, users
from ledger.sql import utcnow
from members import linking
from members.linking import linked_accounts
from members.logins import set_operator
from members.logins import sign_up as sign_up_member
from tests.fakes import oauth_provider
from tests.fakes.oauth_provider import FakeOAuthProvider
from tests.web_helpers import PASSWORD, post_form, sign_up

pytest_plugins = ["tests.hub_fixtures"]

# platform → (the fake's user id, user name, the identity the connectors know them by)
PEOPLE = {
    "x": ("2244994945", "pjotr", "2244994945"),
    "discord": ("80351110224678912", "pjotr", "80351110224678912"),
    "soundcloud": ("4242", "pjotr", "soundcloud:users:4242"),
    "github": ("583231", "pjotr", "583231"),
    "mastodon": ("109", "pjotr", "pjotr@mastodon.example"),
    "vimeo": ("152184", "pjotr", "152184"),  # the profile's uri is /users/152184
    "dailymotion": ("x2lefik", "pjotr", "x2lefik"),
    "youtube": ("UC_x5XG1OV2P6uZZ5FSM9Ttw", "pjotr", "UC_x5XG1OV2P6uZZ5FSM9Ttw"),
}
POLLED = {"x", "soundcloud", "mastodon", "vimeo", "dailymotion", "youtube"}


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeOAuthProvider:
    provider = FakeOAuthProvider()
    server = await aiohttp_server(provider.app())
    provider.url = str(server.make_url("")).rstrip("/")
    return provider


@pytest.fixture
def hub_config(hub_config: Settings, fake: FakeOAuthProvider) -> Settings:
    """The hub's settings, linking pointed at the fake provider."""
    return oauth_provider.configure(hub_config, fake.url)


@pytest.fixture
async def client(fake: FakeOAuthProvider, aiohttp_client: Any, hub_config: Settings,
                 engine: Any, redis: Any) -> Any:
    """The hub, created once its config points at the fake provider."""
    return await aiohttp_client(create_app(hub_config, engine, redis))


async def authorize(client: Any, start: str, form: dict[str, str] | None = None,
                    token_from: str = "/accounts") -> URL:
    """Start at `start`, let the fake provider approve; the callback URL it sends back to."""
    reply = await post_form(client, start, form or {}, token_from=token_from)
    assert reply.status == 303, await reply.text()
    async with aiohttp.ClientSession() as browser:
        approved = await browser.get(reply.headers["Location"], allow_redirects=False)
    assert approved.status == 302, await approved.text()
    return URL(approved.headers["Location"])


async def callback(client: Any, url: URL) -> Any:
    return await client.get(url.path_qs, allow_redirects=False)


async def link_account(client: Any, platform: str, **form: str) -> Any:
    if platform == "mastodon":
        form.setdefault("instance", "mastodon.example")
    return await callback(client, await authorize(client, f"/accounts/link/{platform}", form))


def pledge_to(engine: Any, platform: str, owner: str) -> None:
    """cy (who gave and confirmed an e-mail address) likes a thing of `owner`, who is not on
    the hub."""
    with engine.begin() as conn:
        cy = sign_up_member(conn, "cy", PASSWORD, "cy@example.org")
        conn.execute(update(logins).where(logins.c.user_id == cy)
                     .values(email_verified_at=utcnow()))
        link(conn, cy, platform, "cy-on-the-platform", claim=True)
        ingest(conn, [NormalisedEvent(f"like-{owner}", platform, "like", "cy-on-the-platform",
                                      f"thing-of-{owner}", owner, utcnow())])


def notices(engine: Any) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(kind, name) for kind, name in conn.execute(
            select(notification_outbox.c.kind, users.c.name)
            .join(users, users.c.id == notification_outbox.c.user_id))]


def identity(engine: Any, platform: str, platform_user_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(identities).where(
            identities.c.platform == platform,
            identities.c.platform_user_id == platform_user_id)).first()


def user(engine: Any, name: str) -> int:
    with engine.connect() as conn:
        return accounts.user_id(conn, name)


@pytest.mark.parametrize("platform", sorted(PEOPLE))
async def test_linking_claims_the_identity_and_stores_sealed_tokens(
        client, fake, engine, hub_config, platform):
    await sign_up(client, "ana")
    remote, username, expected = PEOPLE[platform]
    fake.sign_in(platform, remote, username)
    reply = await link_account(client, platform)
    assert reply.status == 303 and reply.headers["Location"] == "/accounts"
    found = identity(engine, platform, expected)
    ana = user(engine, "ana")
    assert (found.linked_user_id, found.claimed_by, found.flattr_enabled) == (ana, ana, True)
    assert found.username == username
    page = await (await client.get("/accounts")).text()
    assert "account is linked" in page and username in page
    [issued] = [token for token, (p, _) in fake.tokens.items() if p == platform]
    with engine.connect() as conn:
        stored = conn.execute(select(poll_accounts)).all()
        raw = conn.execute(text("SELECT * FROM poll_accounts")).all()
    if platform not in POLLED:
        assert stored == []  # nothing polls it: its tokens are not kept
        return
    [account] = stored
    assert account.platform_user_id == expected
    assert vault(hub_config).open(account.access_token) == issued
    assert issued not in repr(raw) and f"{platform}-refresh-" not in repr(raw)
    if platform == "mastodon":
        assert (account.instance, account.remote_id) == ("https://mastodon.example", remote)
        with engine.connect() as conn:
            app_secret = conn.execute(text("SELECT client_secret FROM mastodon_apps")).scalar()
        assert app_secret not in {a["secret"] for a in fake.apps.values()}


async def test_pkce_verifier_stays_sealed_on_the_server_and_must_match(
        client, fake, engine, hub_config):
    await sign_up(client, "ana")
    fake.sign_in("x", *PEOPLE["x"][:2])
    back = await authorize(client, "/accounts/link/x")
    with engine.connect() as conn:
        sealed = conn.execute(select(oauth_pending.c.code_verifier)).scalar_one()
    [grant] = fake.codes.values()
    grant.challenge = "a-challenge-no-verifier-matches"
    reply = await callback(client, back)
    assert reply.status == 400 and "did not accept" in await reply.text()
    sent = fake.token_requests[-1]["code_verifier"]
    assert sent != sealed and vault(hub_config).open(sealed) == sent
    assert identity(engine, "x", PEOPLE["x"][2]) is None

    start = await post_form(client, "/accounts/link/x", {}, token_from="/accounts")
    query = URL(start.headers["Location"]).query
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["scope"] == "tweet.read users.read like.read offline.access"


async def test_a_state_works_once_and_only_in_the_browser_that_started_it(client, fake, engine):
    await sign_up(client, "ana")
    fake.sign_in("github", *PEOPLE["github"][:2])
    back = await authorize(client, "/accounts/link/github")
    forged = back.update_query(state="not-the-state")
    assert (await callback(client, forged)).status == 400
    async with aiohttp.ClientSession() as other_browser:
        elsewhere = await other_browser.get(client.make_url(back.path_qs), allow_redirects=False)
        assert elsewhere.status == 400
        assert "not started in this browser" in await elsewhere.text()
    assert identity(engine, "github", "583231") is None
    assert (await callback(client, back)).status == 303
    again = await callback(client, back)
    assert again.status == 400
    with engine.connect() as conn:
        assert conn.execute(select(oauth_pending)).all() == []
        assert len(conn.execute(select(identities)).all()) == 1


async def test_an_expired_or_refused_authorisation_changes_nothing(client, fake, engine):
    await sign_up(client, "ana")
    fake.sign_in("discord", *PEOPLE["discord"][:2])
    back = await authorize(client, "/accounts/link/discord")
    with engine.begin() as conn:
        conn.execute(update(oauth_pending).values(expires_at=text("created_at")))
    assert (await callback(client, back)).status == 400
    fake.deny = True
    refused = await link_account(client, "discord")
    assert refused.status == 400 and "did not authorise" in await refused.text()
    assert identity(engine, "discord", PEOPLE["discord"][2]) is None


async def test_bad_requests_are_refused_with_the_reason(client, fake):
    await sign_up(client, "ana")
    unknown = await post_form(client, "/accounts/link/myspace", {}, token_from="/accounts")
    assert unknown.status == 404 and "not available" in await unknown.text()
    bad = await post_form(client, "/accounts/link/mastodon", {"instance": "not a host"},
                          token_from="/accounts")
    assert bad.status == 400 and "Mastodon server" in await bad.text()
    internal = await post_form(client, "/accounts/link/mastodon", {"instance": "127.0.0.1"},
                               token_from="/accounts")
    assert internal.status == 400 and not fake.apps  # the hub never called it


async def test_flattr_switch_and_unlink(client, fake, engine, hub_config):
    pledge_to(engine, "x", PEOPLE["x"][2])
    await sign_up(client, "ana")
    fake.sign_in("x", *PEOPLE["x"][:2])
    await link_account(client, "x")
    assert notices(engine) == [("pledgee_joined", "cy")]  # told in the claim's transaction
    iid = identity(engine, "x", PEOPLE["x"][2]).id
    off = await post_form(client, f"/accounts/{iid}/flattr", {"enabled": "0"},
                          token_from="/accounts")
    assert off.status == 303 and identity(engine, "x", PEOPLE["x"][2]).flattr_enabled is False
    assert "no longer become flattrs" in await (await client.get("/accounts")).text()
    await post_form(client, f"/accounts/{iid}/flattr", {"enabled": "1"}, token_from="/accounts")
    assert identity(engine, "x", PEOPLE["x"][2]).flattr_enabled is True

    client.session.cookie_jar.clear()
    await sign_up(client, "bo")
    assert (await post_form(client, f"/accounts/{iid}/flattr", {"enabled": "0"},
                            token_from="/accounts")).status == 404
    assert (await post_form(client, f"/accounts/{iid}/unlink", {},
                            token_from="/accounts")).status == 404
    assert identity(engine, "x", PEOPLE["x"][2]).flattr_enabled is True

    refused = await link_account(client, "x")  # linked by ana: bo may not link it
    assert refused.status == 409 and "linked to another member" in await refused.text()
    assert identity(engine, "x", PEOPLE["x"][2]).linked_user_id == user(engine, "ana")

    await client.post("/logout", data={"csrf_token": ""})
    client.session.cookie_jar.clear()
    await post_form(client, "/login", {"name": "ana", "password": "correct horse battery"})
    assert (await post_form(client, f"/accounts/{iid}/unlink", {},
                            token_from="/accounts")).status == 303
    found = identity(engine, "x", PEOPLE["x"][2])
    assert (found.linked_user_id, found.claimed_by) == (None, user(engine, "ana"))
    with engine.connect() as conn:
        assert conn.execute(select(poll_accounts)).all() == []
    assert (await link_account(client, "x")).status == 303  # and it can be linked again
    assert identity(engine, "x", PEOPLE["x"][2]).linked_user_id == user(engine, "ana")


async def test_a_contested_claim_goes_to_an_operator(client, fake, engine):
    with engine.begin() as conn:
        holder = accounts.create_user(conn, "holder")
        link(conn, holder, "github", "583231", claim=True)
        conn.execute(update(identities).values(linked_user_id=None))
    pledge_to(engine, "github", "583231")
    await sign_up(client, "ana")
    fake.sign_in("github", *PEOPLE["github"][:2])
    reply = await link_account(client, "github")
    assert reply.status == 303
    page = await (await client.get("/accounts")).text()
    assert "claim request #1" in page and "Claim requests" in page
    found = identity(engine, "github", "583231")
    assert (found.claimed_by, found.linked_user_id) == (holder, None)
    assert notices(engine) == []  # nothing was claimed yet
    assert (await client.get("/ops/contests")).status == 403

    ana = user(engine, "ana")
    with engine.begin() as conn:
        set_operator(conn, ana, True)
    listing = await (await client.get("/ops/contests")).text()
    assert "Award to ana" in listing and "holder" in listing
    assert (await post_form(client, "/ops/contests/1", {"decision": "maybe"},
                            token_from="/ops/contests")).status == 400
    awarded = await post_form(client, "/ops/contests/1", {"decision": "award"},
                              token_from="/ops/contests")
    assert awarded.status == 303
    found = identity(engine, "github", "583231")
    assert found.claimed_by == user(engine, "ana") and found.linked_user_id is None
    assert notices(engine) == [("pledgee_joined", "cy")]
    with engine.connect() as conn:
        contest = conn.execute(select(claim_contests)).one()
    assert (contest.state, contest.resolved_by) == ("awarded", user(engine, "ana"))
    assert contest.resolved_at is not None
    again = await post_form(client, "/ops/contests/1", {"decision": "reject"},
                            token_from="/ops/contests")
    assert again.status == 409 and "already awarded" in await again.text()
    assert (await link_account(client, "github")).status == 303  # now ana links it
    assert identity(engine, "github", "583231").linked_user_id == user(engine, "ana")


async def test_a_rejected_contest_leaves_the_claim(client, fake, engine):
    with engine.begin() as conn:
        holder = accounts.create_user(conn, "holder")
        link(conn, holder, "discord", PEOPLE["discord"][2], claim=True)
        conn.execute(update(identities).values(linked_user_id=None))
    await sign_up(client, "ana")
    ana = user(engine, "ana")
    with engine.begin() as conn:
        set_operator(conn, ana, True)
    fake.sign_in("discord", *PEOPLE["discord"][:2])
    await link_account(client, "discord")
    rejected = await post_form(client, "/ops/contests/1", {"decision": "reject"},
                               token_from="/ops/contests")
    assert rejected.status == 303
    assert identity(engine, "discord", PEOPLE["discord"][2]).claimed_by == holder
    assert "rejected" in await (await client.get("/ops/contests")).text()


@pytest.mark.parametrize("platform", sorted(PEOPLE))
async def test_logging_in_with_each_platform_signs_up_then_signs_in(client, fake, engine,
                                                                   platform):
    remote, username, expected = PEOPLE[platform]
    fake.sign_in(platform, remote, username)
    form = {"instance": "mastodon.example"} if platform == "mastodon" else {}
    for _ in range(2):
        client.session.cookie_jar.clear()
        reply = await callback(client, await authorize(client, f"/login/{platform}", form,
                                                       token_from="/login"))
        assert reply.status == 303 and reply.headers["Location"] == "/dashboard"
        assert f"Log out ({username})" in await (await client.get("/login")).text()
    assert identity(engine, platform, expected).linked_user_id == user(engine, username)
    with engine.connect() as conn:
        assert len(conn.execute(select(users)).all()) == 1


async def test_logging_in_with_a_platform_account(client, fake, engine):
    login_page = await (await client.get("/login")).text()
    assert "Log in with GitHub" in login_page and "Log in with Mastodon" in login_page
    with engine.begin() as conn:
        accounts.create_user(conn, "octocat")  # the name is taken: the new member gets another
    fake.sign_in("github", "1", "octocat")
    reply = await callback(client, await authorize(client, "/login/github", token_from="/login"))
    assert reply.status == 303 and reply.headers["Location"] == "/dashboard"
    assert "Log out (octocat-2)" in await (await client.get("/login")).text()
    member = user(engine, "octocat-2")
    found = identity(engine, "github", "1")
    assert (found.linked_user_id, found.claimed_by) == (member, member)

    client.session.cookie_jar.clear()
    again = await callback(client, await authorize(client, "/login/github", token_from="/login"))
    assert again.status == 303
    assert "Log out (octocat-2)" in await (await client.get("/login")).text()
    with engine.connect() as conn:
        assert conn.execute(select(users.c.name).order_by(users.c.id)).scalars().all() == [
            "octocat", "octocat-2"]


async def test_logging_in_with_an_account_claimed_but_not_linked_is_refused(
        client, fake, engine):
    with engine.begin() as conn:
        holder = accounts.create_user(conn, "holder")
        link(conn, holder, "soundcloud", "soundcloud:users:7", claim=True)
        conn.execute(update(identities).values(linked_user_id=None))
    fake.sign_in("soundcloud", "7", "someone")
    reply = await callback(client, await authorize(client, "/login/soundcloud",
                                                   token_from="/login"))
    assert reply.status == 409 and "Log in with your name and password" in await reply.text()
    with engine.connect() as conn:
        assert len(conn.execute(select(users)).all()) == 1


def test_a_token_the_vault_cannot_open_marks_the_account_for_relinking(engine, config):
    with engine.begin() as conn:
        uid = accounts.create_user(conn, "ana")
        account = linking.link_account(conn, uid, "soundcloud", "soundcloud:users:1",
                                       vault=vault(config), access_token="secret")
    other = SoundCloudPoller("cid", "cs", vault=Vault(Fernet.generate_key()))
    assert polling.poll_account(engine, other, account).status == "relink"
    with engine.connect() as conn:
        row = conn.execute(select(poll_accounts)).one()
    assert row.state == "relink" and "web.token_key" in row.last_error


async def test_the_members_own_button_identity_is_not_listed_as_an_account(client, fake,
                                                                         engine):
    await sign_up(client, "ana")
    ana = user(engine, "ana")
    with engine.begin() as conn:
        hub_identity(conn, ana)
    fake.sign_in("github", *PEOPLE["github"][:2])
    await link_account(client, "github")
    with engine.begin() as conn:
        listed = linked_accounts(conn, ana)
    assert [row.platform for row in listed] == ["github"]


async def test_youtube_asks_for_read_only_access_and_a_refresh_token(client, fake, engine,
                                                                     hub_config):
    await sign_up(client, "ana")
    start = await post_form(client, "/accounts/link/youtube", {}, token_from="/accounts")
    query = URL(start.headers["Location"]).query
    assert query["scope"] == "https://www.googleapis.com/auth/youtube.readonly"
    assert (query["access_type"], query["prompt"]) == ("offline", "consent")
    assert query["code_challenge_method"] == "S256"
    fake.sign_in("youtube", *PEOPLE["youtube"][:2])
    assert (await link_account(client, "youtube")).status == 303
    with engine.connect() as conn:
        account = conn.execute(select(poll_accounts)).one()
    assert vault(hub_config).open(account.refresh_token).startswith("youtube-refresh-")


async def test_vimeo_links_by_the_id_of_the_profile_uri_with_basic_client_auth(
        client, fake, engine):
    await sign_up(client, "ana")
    fake.sign_in("vimeo", "notanumber", "pjotr")  # the profile's uri: /users/notanumber
    refused = await link_account(client, "vimeo")
    assert refused.status == 502 and "lacks the account id" in await refused.text()
    assert fake.token_requests[-1].get("client_secret") is None  # sent as HTTP Basic
    with engine.connect() as conn:
        assert conn.execute(select(identities)).all() == []
