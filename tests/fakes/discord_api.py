"""A fake of the part of Discord's REST API a bot uses to send a direct message: `POST
/users/@me/channels` (`{"recipient_id"}` → a DM channel object) and `POST
/channels/{channel.id}/messages` (`{"content", "nonce", "enforce_nonce"}` → a message object),
authenticated with `Authorization: Bot <token>`. Users in `refusing` get Discord's 403 with code
50007 ("Cannot send messages to this user"); a repeated nonce with `enforce_nonce` returns the
message already created instead of a new one, as Discord does."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeDiscordAPI:
    token: str
    refusing: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)  # the DMs delivered
    _ids: Any = field(default_factory=lambda: itertools.count(900000000000000001))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/users/@me/channels", self.open_dm)
        app.router.add_post("/channels/{channel}/messages", self.create_message)
        return app

    def _authorised(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            raise web.HTTPUnauthorized(text='{"message": "401: Unauthorized", "code": 0}',
                                       content_type="application/json")

    async def open_dm(self, request: web.Request) -> web.Response:
        self._authorised(request)
        recipient = str((await request.json())["recipient_id"])
        return web.json_response({"id": f"{recipient}0", "type": 1, "last_message_id": None,
                                  "recipients": [{"id": recipient, "username": "someone"}]})

    async def create_message(self, request: web.Request) -> web.Response:
        self._authorised(request)
        channel = request.match_info["channel"]
        recipient = channel[:-1]
        if recipient in self.refusing:
            return web.json_response(
                {"message": "Cannot send messages to this user", "code": 50007}, status=403)
        body = await request.json()
        if body.get("enforce_nonce"):
            for message in self.messages:
                if message["channel_id"] == channel and message["nonce"] == body.get("nonce"):
                    return web.json_response(message)
        message = {"id": str(next(self._ids)), "channel_id": channel, "type": 0,
                   "content": body["content"], "nonce": body.get("nonce"),
                   "recipient": recipient}
        self.messages.append(message)
        return web.json_response(message)
