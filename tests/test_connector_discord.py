"""Discord: HTTP interactions signed with a real Ed25519 key pair (PyNaCl) through the hub,
answered synchronously from the ledger; gateway reactions built into discord.py's own
RawReactionActionEvent (and parsed by discord.py's gateway state); command registration."""

import asyncio
import copy
import json
import time
from typing import Any

import discord
import pytest
from aiohttp import web
from nacl.signing import SigningKey
from sqlalchemy import select

from base.config import with_overrides
from base.tables.connectors import discord_reactions
from connectors import discord as dc
from connectors import stream_status
from connectors.registry import default_config
from connectors.stream_status import StatusWriter
from hub.app import create_app
from ledger.schema import events as ledger_events
from ledger.schema import flattrs, things
from pipeline import inbox
from tests.discord_helpers import MAREN, MESSAGE, PJOTR, people
from tests.fakes.discord_gateway import fake_gateway
from tests.fakes.platforms import fixture
from tests.fakes.server import serve
from workers import jobs

pytest_plugins = ["tests.hub_fixtures"]

KEY = SigningKey(b"\x07" * 32)


def sign(body: bytes, key: SigningKey = KEY, stamp: int | None = None) -> dict[str, str]:
    stamp_text = str(int(time.time()) if stamp is None else stamp)
    signature = key.sign(stamp_text.encode() + body).signature.hex()
    return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": stamp_text,
            "Content-Type": "application/json"}


@pytest.fixture
async def dc_client(aiohttp_client: Any, hub_config, engine, redis) -> Any:
    hub_config = with_overrides(hub_config, {
        "connectors.discord.public_key": KEY.verify_key.encode().hex()})
    return await aiohttp_client(create_app(hub_config, engine, redis))


def command(interaction_id: str = "1211122334455667788", **changes: Any) -> bytes:
    payload = fixture("discord-interaction-message-command.json")
    payload["id"] = interaction_id
    payload.update(changes)
    return json.dumps(payload).encode()


async def post(client, body: bytes, headers: dict[str, str] | None = None):
    return await client.post("/webhooks/discord", data=body,
                            headers=sign(body) if headers is None else headers)


# --- interactions ---------------------------------------------------------------------------

async def test_ping_is_answered_with_pong(dc_client) -> None:
    body = json.dumps(fixture("discord-interaction-ping.json")).encode()
    response = await post(dc_client, body)
    assert (response.status, await response.json()) == (200, {"type": 1})


async def test_discord_is_off_without_its_public_key(hub_client) -> None:
    body = json.dumps(fixture("discord-interaction-ping.json")).encode()
    assert (await post(hub_client, body)).status == 404


@pytest.mark.parametrize("case", ["missing", "other key", "stale", "future", "changed body",
                                  "not hex", "bad stamp"])
async def test_bad_signatures_get_401_and_change_nothing(dc_client, engine, hub_config,
                                                         case) -> None:
    people(engine, hub_config)
    body = command()
    headers = {
        "missing": {},
        "other key": sign(body, SigningKey(b"\x08" * 32)),
        "stale": sign(body, stamp=int(time.time()) - 301),
        "future": sign(body, stamp=int(time.time()) + 301),
        "changed body": sign(body.replace(b"zine", b"zinf")),
        "not hex": {**sign(body), "X-Signature-Ed25519": "zz"},
        "bad stamp": {**sign(body), "X-Signature-Timestamp": "soon"},
    }[case]
    response = await post(dc_client, body, headers)
    assert response.status == 401
    assert (await response.json())["error"] == "invalid_signature"
    with engine.connect() as conn:
        assert conn.execute(select(flattrs)).first() is None


async def test_message_command_flattrs_synchronously_and_says_so(
        dc_client, engine, hub_config) -> None:
    made = people(engine, hub_config)
    response = await post(dc_client, command())
    assert response.status == 200
    reply = await response.json()
    assert reply["type"] == 4 and reply["data"]["flags"] == 64
    assert reply["data"]["allowed_mentions"] == {"parse": []}
    assert reply["data"]["content"].startswith("💸 You flattred <@401122334455667788>")
    with engine.connect() as conn:
        [flattr] = conn.execute(select(flattrs.c.giver_id, things.c.content_id, things.c.url)
                                .join(things, things.c.id == flattrs.c.thing_id)).all()
        [row] = conn.execute(select(ledger_events)).all()
    assert flattr == (made["pjotr"], MESSAGE, "https://discord.com/channels/901122334455667788/"
                      "1101122334455667788/1301122334455667788")
    assert (row.event_id, row.outcome) == ("1211122334455667788", "flattred")
    assert jobs.process_batch(engine, 10, hub_config)[0] == 0  # nothing left for the queue

    again = await post(dc_client, command())  # Discord retried the same interaction
    assert (await again.json())["data"]["content"].startswith("💸 You flattred")
    second = await post(dc_client, command("1211122334455667799"))
    assert (await second.json())["data"]["content"] == (
        "You already flattred this message this month.")


async def test_outcomes_pledge_not_linked_and_self(dc_client, engine, hub_config) -> None:
    people(engine, hub_config, maren=False)
    reply = await (await post(dc_client, command("1"))).json()
    assert reply["data"]["content"].startswith("🤝 Pledged: <@401122334455667788> isn't on")
    dm = json.loads(command("2"))
    del dm["member"]
    dm["user"] = {"id": "555", "username": "stranger"}
    reply = await (await post(dc_client, json.dumps(dm).encode())).json()
    assert "isn't linked to Flattr Hub" in reply["data"]["content"]
    own = json.loads(command("3"))
    own["data"]["resolved"]["messages"][MESSAGE]["author"]["id"] = PJOTR
    reply = await (await post(dc_client, json.dumps(own).encode())).json()
    assert reply["data"]["content"] == "That's your own message: no self-flattrs."


async def test_malformed_commands_are_400(dc_client) -> None:
    bad = json.loads(command())
    del bad["data"]["resolved"]
    response = await post(dc_client, json.dumps(bad).encode())
    assert response.status == 400
    assert (await post(dc_client, b"not json")).status == 400
    bad["data"] = "flattr"
    assert (await post(dc_client, json.dumps(bad).encode())).status == 400
    user_command = json.loads(command())
    user_command["data"] = {"id": "1", "name": "Flattr this user", "type": 2}
    reply = await (await post(dc_client, json.dumps(user_command).encode())).json()
    assert reply["data"]["content"] == "Nothing flattred: unknown command."


def fake_discord_api(seen: list[web.Request], bodies: list[Any] | None = None
                     ) -> web.Application:
    bodies = [] if bodies is None else bodies

    async def message(request: web.Request) -> web.Response:
        seen.append(request)
        if request.headers.get("Authorization") != "Bot bot-token":
            return web.json_response({"message": "401: Unauthorized"}, status=401)
        return web.json_response({"id": request.match_info["message"],
                                  "channel_id": request.match_info["channel"],
                                  "author": {"id": MAREN, "username": "maren"}})

    async def commands(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.json())
        return web.json_response([{**c, "id": str(n)} for n, c in enumerate(bodies[-1])])

    app = web.Application()
    app.router.add_get("/channels/{channel}/messages/{message}", message)
    app.router.add_put("/applications/{app}/commands", commands)
    return app


async def test_slash_command_looks_the_message_up_with_the_bot(
        aiohttp_client, hub_config, engine, redis) -> None:
    people(engine, hub_config)
    seen: list[web.Request] = []
    api = await aiohttp_client(fake_discord_api(seen))
    hub_config = with_overrides(hub_config, {"connectors.discord": dict(
        public_key=KEY.verify_key.encode().hex(), bot_token="bot-token",
        api_base=str(api.make_url("")).rstrip("/"))})
    client = await aiohttp_client(create_app(hub_config, engine, redis))
    payload = json.loads(command("9"))
    payload["data"] = {"id": "1", "name": "flattr", "type": 1, "options": [
        {"name": "message", "type": 3,
         "value": "https://discord.com/channels/901122334455667788/1101122334455667788/"
                  "1301122334455667788"}]}
    reply = await (await post(client, json.dumps(payload).encode())).json()
    assert reply["data"]["content"].startswith("💸 You flattred <@401122334455667788>")
    assert seen[0].path == "/channels/1101122334455667788/messages/1301122334455667788"
    payload["id"], payload["data"]["options"][0]["value"] = "10", "hello"
    reply = await (await post(client, json.dumps(payload).encode())).json()
    assert reply["data"] == {"content": "Nothing flattred: that is not a Discord message link.",
                             "flags": 64, "allowed_mentions": {"parse": []}}


def test_register_commands_puts_both_commands() -> None:
    seen: list[web.Request] = []
    bodies: list[Any] = []
    with serve(fake_discord_api(seen, bodies)) as url:
        config = with_overrides(default_config(), {"connectors.discord": {
            "bot_token": "bot-token", "application_id": "801", "api_base": url}})
        answer = dc.register_commands(config)
    assert [c["name"] for c in answer] == ["Flattr this message", "flattr"]
    [request] = seen
    assert request.method == "PUT" and request.path == "/applications/801/commands"
    assert request.headers["Authorization"] == "Bot bot-token"
    assert bodies[0][0] == {"name": "Flattr this message", "type": 3}
    with pytest.raises(ValueError, match="bot_token"):
        dc.register_commands(with_overrides(default_config(),
                                            {"connectors.discord.bot_token": ""}))


# --- gateway reactions ----------------------------------------------------------------------

def raw_event(file: str, /, **emoji: Any) -> discord.RawReactionActionEvent:
    """A gateway dispatch turned into discord.py's own event object, as its state does."""
    data = copy.deepcopy(fixture(file)["d"])
    data["emoji"].update(emoji)
    kind = "REACTION_ADD" if "add" in file else "REACTION_REMOVE"
    return discord.RawReactionActionEvent(data, discord.PartialEmoji.from_dict(data["emoji"]),
                                          kind)


def test_fixture_payloads_build_discord_events() -> None:
    added = raw_event("discord-reaction-add.json")
    assert (added.message_author_id, added.type, added.emoji.name) == (
        int(MAREN), discord.ReactionType.normal, "💸")
    assert raw_event("discord-reaction-remove.json").message_author_id is None


def test_reaction_and_its_removal_flattr_and_retract(engine, hub_config, worker_context) -> None:
    made = people(engine, hub_config)
    [like] = dc.handle_reaction(engine, hub_config, raw_event("discord-reaction-add.json"))
    assert (like.kind, like.actor_id, like.owner_id, like.content_id) == (
        "like", PJOTR, MAREN, MESSAGE)
    assert dc.handle_reaction(engine, hub_config, raw_event("discord-reaction-add.json")) == []
    assert jobs.drain()["flattred"] == 1
    [unlike] = dc.handle_reaction(engine, hub_config, raw_event("discord-reaction-remove.json"))
    assert (unlike.kind, unlike.owner_id) == ("unlike", MAREN)  # author stored at ADD
    assert jobs.drain()["unliked"] == 1
    with engine.connect() as conn:
        [flattr] = conn.execute(select(flattrs)).all()
        assert conn.execute(select(discord_reactions)).first() is None
    assert flattr.giver_id == made["pjotr"] and flattr.retracted_at is not None


def test_only_counted_emoji_make_likes_and_the_last_removal_unlikes(engine, hub_config) -> None:
    assert dc.handle_reaction(engine, hub_config,
                              raw_event("discord-reaction-add.json", name="👍")) == []
    custom = {"id": "555000111", "name": "flattr"}
    assert len(dc.handle_reaction(engine, hub_config,
                                  raw_event("discord-reaction-add.json", **custom))) == 1
    assert dc.handle_reaction(engine, hub_config, raw_event("discord-reaction-add.json")) == []
    assert dc.handle_reaction(engine, hub_config,
                              raw_event("discord-reaction-remove.json", **custom)) == []
    [unlike] = dc.handle_reaction(engine, hub_config, raw_event("discord-reaction-remove.json"))
    assert unlike.kind == "unlike"
    assert dc.handle_reaction(engine, hub_config, raw_event("discord-reaction-remove.json")) == []


def test_guilds_choose_their_own_emoji(engine, hub_config) -> None:
    with engine.begin() as conn:
        dc.set_guild_emoji(conn, "901122334455667788", ["🎉"])
    assert dc.handle_reaction(engine, hub_config, raw_event("discord-reaction-add.json")) == []
    assert len(dc.handle_reaction(engine, hub_config,
                                  raw_event("discord-reaction-add.json", name="🎉"))) == 1


async def test_the_bot_records_reactions_parsed_by_discord_py(engine, hub_config) -> None:
    people(engine, hub_config)
    woken: list[Any] = []
    client = dc.make_bot(engine, hub_config, woken.append)
    assert client.intents.reactions and not client.intents.message_content
    await client._async_setup_hook()
    client._connection.parse_message_reaction_add(fixture("discord-reaction-add.json")["d"])
    for _ in range(200):
        if woken:
            break
        await asyncio.sleep(0.01)
    [[like]] = woken
    assert (like.kind, like.owner_id) == ("like", MAREN)
    with engine.connect() as conn:
        assert inbox.pending_count(conn) == 1
    await client.close()


async def test_the_bot_logs_in_with_its_token_and_turns_gateway_reactions_into_likes(
        aiohttp_client, engine, hub_config, redis) -> None:
    people(engine, hub_config)
    identified: list[dict[str, Any]] = []
    api = await aiohttp_client(fake_gateway(identified))
    hub_config = with_overrides(hub_config, {"connectors.discord": dict(
        bot_token="bot-token", api_base=str(api.make_url("")).rstrip("/"),
        gateway_url=str(api.make_url("/gw")).replace("http", "ws", 1))})
    recorded: list[Any] = []
    clients: list[Any] = []
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    task = asyncio.create_task(dc.run_bot(engine, hub_config, recorded.extend, clients.append,
                                          StatusWriter(redis, "discord")))
    try:
        for _ in range(500):
            if (len(recorded) == 2 and stream_status.read(redis, "discord", 15).lag_seconds
                    is not None) or task.done():
                break
            await asyncio.sleep(0.01)
        assert [e.kind for e in recorded] == ["like", "unlike"]
        [identify] = identified
        assert identify["token"] == "bot-token"
        assert identify["intents"] & discord.Intents(reactions=True).value
        live = stream_status.read(redis, "discord", 15)
        assert live.connected and live.last_event_at is not None and live.lag_seconds >= 0
    finally:
        await clients[0].close()
        await asyncio.wait_for(task, 5)
        discord.http.Route.BASE = base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
    with engine.connect() as conn:
        assert inbox.pending_count(conn) == 2
    assert not stream_status.read(redis, "discord", 15).connected  # closed: written at once


def test_an_unusable_public_key_stops_the_hub_naming_the_key(hub_config, engine, redis) -> None:
    hub_config = with_overrides(hub_config, {"connectors.discord.public_key": "not-a-key"})
    with pytest.raises(ValueError, match=r"^connectors\.discord\.public_key ") as caught:
        create_app(hub_config, engine, redis)
    assert "not-a-key" not in str(caught.value)
