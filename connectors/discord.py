"""Discord: HTTP interactions (a "Flattr this message" message command and `/flattr`) and a
gateway bot that turns reaction emoji into likes.

Interactions (`POST /webhooks/discord`, on when `connectors.discord.public_key` is set):
- `X-Signature-Ed25519` (hex) over `X-Signature-Timestamp + raw body`, checked with PyNaCl
  against the application's public key; a timestamp more than `TOLERANCE` seconds away from
  now is refused too (401 either way, before anything is parsed).
- PING (`type` 1) answers `{"type": 1}`.
- The message command (`data.type` 3) flattrs `data.resolved.messages[target_id]`, whose
  author is its owner; the actor is `member.user.id` (in a guild) or `user.id` (in a DM).
  `/flattr message:<message link>` looks the message up with the bot token.
- The event (id: the interaction `id`) is recorded synchronously through `ledger.ingest` and
  kept in the inbox as already processed, so the ephemeral reply (`flags` 64) can say what
  happened: flattred, pledged (the author is not on the hub yet), not linked, already
  flattred this month, or your own message.

Gateway bot (`flattr-hub discord-bot`, on when `connectors.discord.bot_token` is set): with
the `reactions` intent, `on_raw_reaction_add` / `on_raw_reaction_remove` of an emoji that
counts in that guild (`discord_guilds`, else `connectors.discord.emoji`) become a like / an
unlike through the inbox. The author comes with REACTION_ADD (`message_author_id`) and is
stored for REACTION_REMOVE, which does not carry it. A user's second counted emoji on the same
message changes nothing; removing the last one is the unlike. A reaction that cannot be stored
while the database is down is retried, then spooled to a file and replayed in order
(`connectors.discord_spool`): none is lost.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import structlog
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from sqlalchemy import Connection, Engine, delete, insert, select

from base.config import Settings as Config
from base.inputs import parse_int
from base.tables.connectors import discord_guilds, discord_reactions
from connectors.base import Headers, PayloadError, Settings, SignatureError, event, field_of
from connectors.discord_spool import MAX_RETRY_SECONDS, SPOOL_FILE, Reaction, Recorder, Spool
from connectors.platform import OAuthProvider, Platform, Stream, key_set
from connectors.poll_diff import event_id as observation_id
from connectors.stream_status import StatusWriter, heartbeat_seconds
from ledger.events import NormalisedEvent
from ledger.ingest import ingest
from ledger.schema import events as ledger_events
from ledger.sql import utcnow
from pipeline import inbox

API = "https://discord.com/api/v10"
TOLERANCE = 300
EPHEMERAL = 64
PING, APPLICATION_COMMAND = 1, 2
CHAT_INPUT, MESSAGE_COMMAND = 1, 3
MESSAGE_LINK = re.compile(r"discord(?:app)?\.com/channels/(\d+|@me)/(\d+)/(\d+)")
COMMANDS = [
    {"name": "Flattr this message", "type": MESSAGE_COMMAND},
    {"name": "flattr", "type": CHAT_INPUT, "description": "Flattr a message by its link",
     "options": [{"name": "message", "type": 3, "required": True,
                  "description": "the message link (⋯ → Copy Message Link)"}]},
]

log = structlog.get_logger(__name__)


# --- verification ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ed25519Signature:
    """Discord's interaction signature: Ed25519 over timestamp + raw body."""

    key: str = "public_key"
    tolerance: int = TOLERANCE

    def check_settings(self, settings: Settings) -> None:
        try:
            VerifyKey(bytes.fromhex(getattr(settings, self.key)))
        except Exception:
            raise ValueError(f"{self.key} is not a hex Ed25519 public key") from None

    def verify(self, settings: Settings, body: bytes, headers: Headers,
               now: float | None = None) -> None:
        signature = headers.get("X-Signature-Ed25519", "")
        stamp = headers.get("X-Signature-Timestamp", "")
        if not signature or not stamp:
            raise SignatureError("missing X-Signature-Ed25519 or X-Signature-Timestamp header")
        try:
            moment = parse_int(stamp)
        except ValueError:
            raise SignatureError("malformed X-Signature-Timestamp") from None
        if abs((time.time() if now is None else now) - moment) > self.tolerance:
            raise SignatureError("X-Signature-Timestamp is outside the window")
        try:
            VerifyKey(bytes.fromhex(getattr(settings, self.key))).verify(
                stamp.encode() + body, bytes.fromhex(signature))
        except (BadSignatureError, ValueError, TypeError):
            raise SignatureError("signature does not match") from None


VERIFIER = Ed25519Signature()


def enabled(config: Config) -> bool:
    return bool(PLATFORM.section(config).public_key)


# --- interactions ---------------------------------------------------------------------------

def actor_of(payload: Mapping[str, Any]) -> str:
    member = payload.get("member")
    if isinstance(member, Mapping) and member.get("user"):
        return str(field_of(member, "user", "id"))
    return str(field_of(payload, "user", "id"))


def message_url(guild: Any, channel: Any, message: Any) -> str:
    return f"https://discord.com/channels/{guild or '@me'}/{channel}/{message}"


def like_event(payload: Mapping[str, Any], message: Mapping[str, Any]) -> NormalisedEvent:
    """The like an interaction makes of `message` (a Discord message object)."""
    message_id = str(field_of(message, "id"))
    channel = message.get("channel_id") or payload.get("channel_id")
    return event(event_id=field_of(payload, "id"), platform="discord", kind="like",
                 actor_id=actor_of(payload), content_id=message_id,
                 owner_id=str(field_of(message, "author", "id")), occurred_at=datetime.now(UTC),
                 url=message_url(payload.get("guild_id"), channel, message_id))


def target_message(payload: Mapping[str, Any], config: Config) -> Mapping[str, Any]:
    """The message an application command is about. Raises PayloadError when it can't be had."""
    data = field_of(payload, "data")
    if not isinstance(data, Mapping):
        raise PayloadError("payload data must be an object")
    if data.get("type") == MESSAGE_COMMAND:
        target = str(field_of(data, "target_id"))
        return field_of(data, "resolved", "messages", target)
    if data.get("type") == CHAT_INPUT and data.get("name") == "flattr":
        options = data.get("options")
        link = next((str(o.get("value", "")) for o in
                     (options if isinstance(options, list) else [])
                     if isinstance(o, Mapping) and o.get("name") == "message"), "")
        found = MESSAGE_LINK.search(link)
        if not found:
            raise PayloadError("that is not a Discord message link")
        return fetch_message(config, found.group(2), found.group(3))
    raise PayloadError("unknown command")


def fetch_message(config: Config, channel: str, message: str) -> Mapping[str, Any]:
    """GET a message with the bot token (2 s at most: the reply is due within 3 s)."""
    section = PLATFORM.section(config)
    if not section.bot_token:
        raise PayloadError("looking up message links needs the bot")
    try:
        response = requests.get(
            f"{section.api_base or API}/channels/{channel}/messages/{message}",
            headers={"Authorization": f"Bot {section.bot_token}"}, timeout=2)
    except requests.RequestException:
        raise PayloadError("Discord did not answer in time") from None
    if response.status_code != 200:
        raise PayloadError("the bot can't read that message")
    return response.json()


def record_now(engine: Engine, entry: NormalisedEvent) -> str:
    """Ingest one event in a transaction of its own, bypassing the inbox (the reply is due
    within 3 s); return its outcome (for a repeated interaction, the outcome recorded the first
    time). Like every recorded event, it is kept in the ledger's `events`."""
    with engine.begin() as conn:
        result = ingest(conn, [entry])
        outcome = result.outcomes.get(entry.key, "duplicate")
        if outcome == "duplicate":
            return _recorded_outcome(conn, entry) or outcome
    return outcome


def _recorded_outcome(conn: Connection, entry: NormalisedEvent) -> str | None:
    return conn.execute(select(ledger_events.c.outcome).where(
        ledger_events.c.platform == entry.platform,
        ledger_events.c.event_id == entry.event_id)).scalar()


REPLIES = {
    "flattred": "💸 You flattred <@{owner}>'s message. It counts in this month's flattrs.",
    "pledge": "🤝 Pledged: <@{owner}> isn't on Flattr Hub yet. Your flattr waits for them "
              "and counts once they join.",
    "unknown_actor": "Your Discord account isn't linked to Flattr Hub (or flattring is off "
                     "for it). Link it on the hub, then try again.",
    "already": "You already flattred this message this month.",
    "self": "That's your own message: no self-flattrs.",
    "retracted": "Not counted: you withdrew a flattr of this message after this moment.",
}


def ephemeral(content: str) -> dict[str, Any]:
    return {"type": 4, "data": {"content": content, "flags": EPHEMERAL,
                                "allowed_mentions": {"parse": []}}}


def answer(engine: Engine, config: Config, payload: Any) -> dict[str, Any]:
    """The synchronous answer to a verified interaction."""
    if not isinstance(payload, Mapping):
        raise PayloadError("body must be a JSON object")
    kind = payload.get("type")
    if kind == PING:
        return {"type": 1}
    if kind != APPLICATION_COMMAND:
        raise PayloadError("unsupported interaction type")
    try:
        message = target_message(payload, config)
    except PayloadError as exc:
        data = payload.get("data")
        if not isinstance(data, Mapping) or data.get("type") == MESSAGE_COMMAND:
            raise  # malformed: Discord always resolves the target of a message command
        return ephemeral(f"Nothing flattred: {exc}.")
    like = like_event(payload, message)
    outcome = record_now(engine, like)
    log.info("discord_interaction", outcome=outcome)
    text = REPLIES.get(outcome, f"Nothing flattred ({outcome}).")
    return ephemeral(text.format(owner=like.owner_id))


# --- gateway reactions ----------------------------------------------------------------------

def emoji_key(emoji: Any) -> str:
    """How a reaction emoji is stored: a custom emoji by id, a Unicode emoji by itself."""
    return str(emoji.id) if getattr(emoji, "id", None) else str(emoji.name)


def counts(emoji: Any, wanted: Iterable[str]) -> bool:
    """Whether a reaction emoji is one of `wanted` (Unicode emoji, custom names or ids)."""
    names = {str(w).strip(":") for w in wanted}
    return emoji.name in names or (emoji.id is not None and str(emoji.id) in names) or str(
        emoji) in names


def guild_emoji(conn: Connection, guild_id: int | None, default: Iterable[str]) -> list[str]:
    if guild_id is not None:
        stored = conn.execute(select(discord_guilds.c.emoji).where(
            discord_guilds.c.guild_id == str(guild_id))).scalar()
        if stored:
            return list(json.loads(stored))
    return list(default)


def set_guild_emoji(conn: Connection, guild_id: str, emoji: list[str]) -> None:
    conn.execute(delete(discord_guilds).where(discord_guilds.c.guild_id == guild_id))
    conn.execute(insert(discord_guilds).values(guild_id=guild_id, emoji=json.dumps(emoji),
                                               updated_at=utcnow()))


def reaction_events(conn: Connection, raw: Any, default_emoji: Iterable[str],
                    now: datetime | None = None) -> list[NormalisedEvent]:
    """Apply one `discord.RawReactionActionEvent` to the stored reactions and return the like
    or unlike it makes (none for emoji that don't count, repeats, or a second emoji)."""
    if not counts(raw.emoji, guild_emoji(conn, raw.guild_id, default_emoji)):
        return []
    now = now or utcnow()
    key = {"message_id": str(raw.message_id), "user_id": str(raw.user_id)}
    held = conn.execute(select(discord_reactions).where(
        discord_reactions.c.message_id == key["message_id"],
        discord_reactions.c.user_id == key["user_id"])).all()
    mine = emoji_key(raw.emoji)
    if raw.event_type == "REACTION_ADD":
        if raw.message_author_id is None or any(r.emoji == mine for r in held):
            return []
        conn.execute(insert(discord_reactions).values(
            emoji=mine, author_id=str(raw.message_author_id),
            guild_id=str(raw.guild_id) if raw.guild_id else None,
            channel_id=str(raw.channel_id), added_at=now, **key))
        if held:
            return []  # already liked with another counted emoji
        return [_reaction_event(raw, "like", str(raw.message_author_id), now)]
    row = next((r for r in held if r.emoji == mine), None)
    if row is None:
        return []  # added before the bot ran, or not counted: nothing to retract
    conn.execute(delete(discord_reactions).where(
        discord_reactions.c.message_id == key["message_id"],
        discord_reactions.c.user_id == key["user_id"], discord_reactions.c.emoji == mine))
    if len(held) > 1:
        return []
    return [_reaction_event(raw, "unlike", row.author_id, now)]


def _reaction_event(raw: Any, kind: str, author: str, now: datetime) -> NormalisedEvent:
    actor, message = str(raw.user_id), str(raw.message_id)
    return NormalisedEvent.from_dict({
        "event_id": observation_id("discord", actor, message, kind, now), "platform": "discord",
        "kind": kind, "actor_id": actor, "content_id": message, "owner_id": author,
        "occurred_at": now.replace(tzinfo=UTC),
        "url": message_url(raw.guild_id, raw.channel_id, message)})


def handle_reaction(engine: Engine, config: Config, raw: Any,
                    now: datetime | None = None) -> list[NormalisedEvent]:
    """Record what a reaction dispatch (seen at `now`) means in the inbox (one transaction)
    and return it. The caller wakes the queue."""
    with engine.begin() as conn:
        found = reaction_events(conn, raw, PLATFORM.section(config).emoji, now)
        inbox.append(conn, [inbox.Entry(e, None) for e in found])
    return found


def make_bot(engine: Engine, config: Settings, on_recorded: Any,
             status: StatusWriter | None = None) -> Any:
    """A discord.py Client with the reactions intent whose raw reaction handlers record likes
    and unlikes; `on_recorded(events)` runs after each commit (it wakes the queue).

    `status` (`connectors.stream_status`) hears of the gateway connection (connected on READY
    and RESUMED, disconnected when it drops or the bot closes), of each stored reaction (its lag
    from dispatch to commit) and, every `streams.heartbeat_seconds`, that the bot still runs.

    discord.py runs each dispatch as a task of its own, so an add quickly followed by its
    removal could be stored out of order: one worker thread records them in dispatch order.
    While the database is down they wait in the spool (`<data_dir>/discord-reactions.spool`),
    replayed on a timer with backoff and when the bot starts."""
    from concurrent.futures import ThreadPoolExecutor

    import discord

    intents = discord.Intents.none()
    intents.guilds = True
    intents.reactions = True
    in_order = ThreadPoolExecutor(max_workers=1, thread_name_prefix="discord-reactions")
    settings = PLATFORM.section(config)
    recorder = Recorder(lambda r: handle_reaction(engine, config, r, r.seen),
                        Spool(Path(config.data_dir) / SPOOL_FILE), settings.retry_seconds)

    async def report(write: Callable[[StatusWriter], None]) -> None:
        if status is not None:
            await asyncio.get_running_loop().run_in_executor(None, write, status)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(heartbeat_seconds(config))
            await report(StatusWriter.heartbeat)

    class Bot(discord.Client):
        replaying: asyncio.Task[None] | None = None
        beating: asyncio.Task[None] | None = None

        async def setup_hook(self) -> None:
            self.replay_soon()  # what an earlier run spooled
            if status is not None:
                self.beating = asyncio.get_running_loop().create_task(heartbeat())

        async def on_connect(self) -> None:  # dispatched on READY
            await report(StatusWriter.connected)

        async def on_resumed(self) -> None:
            await report(StatusWriter.connected)

        async def on_disconnect(self) -> None:
            await report(StatusWriter.disconnected)

        def replay_soon(self) -> None:
            if recorder.spooled and (self.replaying is None or self.replaying.done()):
                self.replaying = asyncio.get_running_loop().create_task(replay())

        async def close(self) -> None:
            for task in (self.replaying, self.beating):
                if task is not None:
                    task.cancel()
            await super().close()

    discord.VoiceClient.warn_dave = False  # the bot never joins voice: no warning about it
    client = Bot(intents=intents)

    async def stored(found: list[NormalisedEvent]) -> None:
        if found:
            await asyncio.get_running_loop().run_in_executor(None, on_recorded, found)
            await report(lambda writer: writer.event(found[-1].occurred_at))

    async def replay() -> None:
        delay = recorder.retry_seconds
        while recorder.spooled:
            await asyncio.sleep(delay)
            await stored(await asyncio.get_running_loop().run_in_executor(
                in_order, recorder.replay))
            delay = min(MAX_RETRY_SECONDS, max(delay * 2, 0.05))

    async def record(raw: discord.RawReactionActionEvent) -> None:
        reaction = Reaction.of(raw, utcnow())
        await stored(await asyncio.get_running_loop().run_in_executor(
            in_order, recorder.record, reaction))
        client.replay_soon()

    client.event(_named("on_raw_reaction_add", record))
    client.event(_named("on_raw_reaction_remove", record))
    return client


def _named(name: str, handler: Any) -> Any:
    async def wrapper(raw: Any) -> None:
        await handler(raw)

    wrapper.__name__ = name
    return wrapper


def register_commands(config: Config) -> list[dict[str, Any]]:
    """PUT the application's global commands (replacing what was there); return Discord's
    answer. Raises ValueError with a safe message on failure."""
    section = PLATFORM.section(config)
    if not section.bot_token or not section.application_id:
        raise ValueError("connectors.discord.bot_token and application_id must be set")
    url = f"{section.api_base or API}/applications/{section.application_id}/commands"
    try:
        response = requests.put(url, json=COMMANDS, timeout=10,
                                headers={"Authorization": f"Bot {section.bot_token}"})
    except requests.RequestException as exc:
        raise ValueError(f"Discord unreachable: {exc.__class__.__name__}") from None
    if response.status_code != 200:
        raise ValueError(f"Discord refused the commands (HTTP {response.status_code})")
    return response.json()


async def run_bot(engine: Engine, config: Settings, on_recorded: Any,
                  started: Any = None, status: StatusWriter | None = None) -> None:
    """Log in with `connectors.discord.bot_token` and record reactions until the connection
    is closed. `connectors.discord.api_base` and `gateway_url` replace Discord's API base and
    gateway (a local fake in tests). `started(client)` is called once the client exists;
    `status` hears of the connection and of each stored reaction (see `make_bot`)."""
    import discord
    import yarl

    section = PLATFORM.section(config)
    if not section.bot_token:
        raise ValueError("connectors.discord.bot_token is not set")
    if section.api_base:
        discord.http.Route.BASE = section.api_base.rstrip("/")
    if section.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(section.gateway_url)
    client = make_bot(engine, config, on_recorded, status)
    if started is not None:
        started(client)
    try:
        async with client:
            await client.start(section.bot_token)
    finally:
        if status is not None:  # here, not in close(): nothing waits for close() to finish
            await asyncio.to_thread(status.disconnected)


@dataclass(frozen=True)
class DiscordSettings:
    """`connectors.discord`: interactions are on with `public_key`, the gateway bot with
    `bot_token`, linking with `client_id`."""

    public_key: str = ""
    bot_token: str = field(default="", repr=False)
    application_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    emoji: tuple[str, ...] = ("💸", "flattr")
    api_base: str = ""  # "" = https://discord.com/api/v10
    gateway_url: str = ""  # "" = wss://gateway.discord.gg/
    oauth_authorize_url: str = ""  # "" = https://discord.com/oauth2/authorize
    oauth_token_url: str = ""  # "" = https://discord.com/api/oauth2/token
    profile_url: str = ""  # "" = https://discord.com/api/users/@me
    retry_seconds: float = 1.0  # the bot's first wait before storing a reaction again


PLATFORM = Platform(
    name="discord", display_name="Discord", settings=DiscordSettings,
    linking=OAuthProvider(
        "https://discord.com/oauth2/authorize", "https://discord.com/api/oauth2/token",
        "https://discord.com/api/users/@me", ("identify",), pkce=False, client_auth="post",
        user_id=("id",), username=("username",)),
    stream=Stream(command=("discord-bot",), enabled=key_set("bot_token")),
)
