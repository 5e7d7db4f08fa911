"""A fake of Discord's REST login and gateway, enough for discord.py to log in as a bot: `GET
/users/@me` (`Authorization: Bot <token>`, else Discord's 401), `GET /oauth2/applications/@me`,
and a WebSocket at `/gw` that sends HELLO, answers IDENTIFY with READY and then sends the given
dispatches (the gateway payloads of `tests/fixtures/`, e.g. a MESSAGE_REACTION_ADD)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from tests.fakes.platforms import fixture

TOKEN = "bot-token"
BOT = {"id": "801122334455667788", "username": "flattr", "discriminator": "0",
       "avatar": None, "bot": True, "global_name": None}


def reply(body: Any, status: int = 200) -> web.Response:
    # discord.py decodes JSON only for exactly `application/json`, as Discord sends it
    return web.Response(body=json.dumps(body).encode(), status=status,
                        headers={"Content-Type": "application/json"})


def fake_gateway(identified: list[dict[str, Any]],
                 dispatches: Sequence[str] = ("discord-reaction-add.json",
                                              "discord-reaction-remove.json"),
                 token: str = TOKEN) -> web.Application:
    """The fake; each IDENTIFY frame's `d` is appended to `identified`, and every session gets
    the fixture files named in `dispatches`, in order."""
    app = web.Application()

    async def me(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bot {token}":
            return reply({"message": "401: Unauthorized", "code": 0}, 401)
        return reply(BOT)

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45000}, "s": None, "t": None})
        async for message in ws:
            frame = json.loads(message.data)
            if frame["op"] != 2:
                continue  # heartbeats
            identified.append(frame["d"])
            await ws.send_json({"op": 0, "s": 1, "t": "READY", "d": {
                "v": 10, "user": BOT, "guilds": [], "session_id": "session",
                "resume_gateway_url": f"ws://{request.host}/gw", "shard": [0, 1],
                "application": {"id": BOT["id"], "flags": 0}}})
            for seq, name in enumerate(dispatches, 2):
                await ws.send_json({"op": 0, "s": seq, **fixture(name)})
        return ws

    async def application(request: web.Request) -> web.Response:
        return reply({"id": BOT["id"], "name": "Flattr Hub", "description": "", "icon": None,
                      "bot_public": True, "bot_require_code_grant": False, "verify_key": "00",
                      "owner": {**BOT, "id": "1", "bot": False}, "flags": 0})

    app.router.add_get("/users/@me", me)
    app.router.add_get("/oauth2/applications/@me", application)
    app.router.add_get("/gw", socket)
    return app
