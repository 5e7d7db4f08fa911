"""Connector commands: the Discord gateway bot and its command registration, per-guild emoji,
linking accounts for the pollers (what OAuth linking stores), listing them, enqueueing due
polls now, and registering the hub's app on a Mastodon instance.

Tokens are read from the environment (`FLATTR_LINK_ACCESS_TOKEN`, `FLATTR_LINK_REFRESH_TOKEN`;
Flickr's OAuth 1.0a token secret from `FLATTR_LINK_TOKEN_SECRET`) or from standard input (the
second line: the refresh token, or Flickr's token secret), never from the command line (where
`ps` would show them), and are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from base.errors import UserError
from base.redis_conn import connect
from base.vault import vault
from connectors import discord as discord_connector
from connectors import mastodon as mastodon_connector
from connectors import registry
from connectors.poll_storage import list_accounts
from connectors.stream_status import StatusWriter
from flattr_hub.commands import add_command, usage
from ledger import accounts
from members.linking import link_account
from pipeline.context import Context, install
from pipeline.queues import wake
from workers.pollers import schedule_polls

PLATFORMS = tuple(p.name for p in registry.polled())


def register(commands: Any) -> None:
    add_command(commands, "discord-bot", "run the Discord gateway bot: reactions with the "
                "configured emoji become likes, their removal unlikes", _discord_bot)
    discord_cmd = add_command(commands, "discord", "Discord application commands and emoji",
                              usage("discord register-commands | discord emoji GUILD ..."))
    actions = discord_cmd.add_subparsers(metavar="ACTION")
    add_command(actions, "register-commands", "register the 'Flattr this message' and /flattr "
                "commands with Discord", _register_commands)
    emoji = add_command(actions, "emoji", "set the reaction emoji that count in one guild "
                        "(Unicode emoji or custom emoji names)", _guild_emoji)
    emoji.add_argument("guild_id")
    emoji.add_argument("emoji", nargs="+")

    conn_cmd = add_command(commands, "connectors", "linked accounts that pollers read",
                           usage("connectors link|accounts|poll"))
    actions = conn_cmd.add_subparsers(metavar="ACTION")
    link = add_command(actions, "link", "link a platform account to a user and store its "
                       "tokens for polling (tokens from FLATTR_LINK_ACCESS_TOKEN / "
                       "FLATTR_LINK_REFRESH_TOKEN or standard input)", _link)
    link.add_argument("name", help="hub user name")
    link.add_argument("platform", choices=PLATFORMS)
    link.add_argument("platform_user_id", help="X user id, SoundCloud user URN, Mastodon "
                      "user@host, Vimeo or Dailymotion user id, YouTube channel id, or Flickr "
                      "NSID")
    link.add_argument("--remote-id", help="the id the API uses, when it differs (Mastodon: "
                      "the account id on its instance)")
    link.add_argument("--instance", default="", help="Mastodon instance, e.g. mastodon.social")
    listing = add_command(actions, "accounts", "list linked accounts and their poll state",
                          _accounts)
    listing.add_argument("--platform", choices=PLATFORMS)
    add_command(actions, "poll", "enqueue the polls that are due now (the scheduler does this "
                "every pollers.tick_seconds)", _poll)

    mastodon_cmd = add_command(commands, "mastodon", "Mastodon instances",
                               usage("mastodon register-app INSTANCE"))
    app_cmd = add_command(mastodon_cmd.add_subparsers(metavar="ACTION"), "register-app",
                          "register the hub's app on an instance (once) and store its "
                          "client credentials", _register_app)
    app_cmd.add_argument("instance")


def _discord_bot(_args: argparse.Namespace, app: Any) -> int:
    import aiohttp
    import discord

    if not app.config.connectors["discord"].bot_token:
        raise UserError("connectors.discord.bot_token is not set")
    redis = connect(app.config)

    def started(client: Any) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: loop.create_task(client.close()))
        print("Discord bot starting (Ctrl-C to stop)", flush=True)

    try:
        asyncio.run(discord_connector.run_bot(app.engine, app.config, lambda _e: wake(redis),
                                              started, StatusWriter(redis, "discord")))
    except discord.LoginFailure:
        raise UserError("Discord refused the bot token (connectors.discord.bot_token)") from None
    except (discord.GatewayNotFound, discord.ConnectionClosed, aiohttp.ClientError) as exc:
        raise UserError(f"cannot reach Discord: {exc.__class__.__name__}") from None
    return 0


def _register_commands(_args: argparse.Namespace, app: Any) -> int:
    try:
        answer = discord_connector.register_commands(app.config)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print("registered: " + ", ".join(command["name"] for command in answer))
    return 0


def _guild_emoji(args: argparse.Namespace, app: Any) -> int:
    with app.engine.begin() as conn:
        discord_connector.set_guild_emoji(conn, args.guild_id, list(args.emoji))
    print(f"guild {args.guild_id} counts {' '.join(args.emoji)}")
    return 0


def _tokens() -> tuple[str, str | None]:
    access = os.environ.get("FLATTR_LINK_ACCESS_TOKEN", "")
    refresh = os.environ.get("FLATTR_LINK_REFRESH_TOKEN") or None
    if not access:
        lines = sys.stdin.read().split()
        if not lines:
            raise UserError("no access token: set FLATTR_LINK_ACCESS_TOKEN or pipe it on stdin")
        access = lines[0]
        refresh = refresh or (lines[1] if len(lines) > 1 else None)
    return access, refresh


def _link(args: argparse.Namespace, app: Any) -> int:
    access, refresh = _tokens()
    secret = None
    linking = registry.BY_NAME[args.platform].linking
    if linking is not None and linking.protocol == "oauth1":  # a secret, no refresh token
        secret, refresh = os.environ.get("FLATTR_LINK_TOKEN_SECRET") or refresh, None
        if not secret:
            raise UserError(f"a {args.platform} account needs its token secret: set "
                            "FLATTR_LINK_TOKEN_SECRET or give it on the second line of stdin")
    instance = args.instance
    if args.platform == "mastodon":
        if not instance and "@" in args.platform_user_id:
            instance = args.platform_user_id.rsplit("@", 1)[1]
        if not instance or not args.remote_id:
            raise UserError("a Mastodon account needs --instance (or user@host) and --remote-id")
        instance = mastodon_connector.instance_url(instance)
    section = app.config.connectors[args.platform]
    with app.engine.begin() as conn:
        uid = accounts.user_id(conn, args.name)
        link_account(conn, uid, args.platform, args.platform_user_id, vault=vault(app.config),
                     remote_id=args.remote_id,
                     access_token=access, refresh_token=refresh, token_secret=secret,
                     instance=instance,
                     poll_seconds=section.poll_seconds)
    print(f"linked {args.platform} account {args.platform_user_id} to {args.name}; "
          "it will be polled")
    return 0


def _accounts(args: argparse.Namespace, app: Any) -> int:
    with app.engine.connect() as conn:
        rows = list_accounts(conn, args.platform)
    for row in rows:
        polled = row.last_polled_at.isoformat(timespec="seconds") if row.last_polled_at else "-"
        print(f"{row.id}\t{row.platform}\t{row.platform_user_id}\t{row.state}\t"
              f"next {row.next_poll_at.isoformat(timespec='seconds')}\tlast {polled}"
              + (f"\t{row.last_error}" if row.last_error else ""))
    return 0


def _poll(_args: argparse.Namespace, app: Any) -> int:
    install(Context(app.config, app.engine, connect(app.config)))
    try:
        handed = schedule_polls()
    finally:
        install(None)
    print("enqueued: " + (", ".join(f"{p} {n}" for p, n in handed.items()) or "nothing due"))
    return 0


def _register_app(args: argparse.Namespace, app: Any) -> int:
    try:
        with app.engine.begin() as conn:
            mastodon_connector.app_credentials(conn, args.instance, app.config)
    except Exception as exc:  # Mastodon.py wraps every failure in its own error types
        raise UserError(f"cannot register on {args.instance}: "
                        f"{mastodon_connector.unreachable(exc, args.instance)}") from None
    print(f"the hub's app is registered on {mastodon_connector.host_of(args.instance)}")
    return 0
